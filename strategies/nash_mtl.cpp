#include "strategies/nash_mtl.h"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>
#include <torch/torch.h>

#include "strategies/fair_weights.h"
#include "strategies/support.h"

namespace fulcrum {

NashMtlOptions readNashMtlOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  (void)tasks;
  NashMtlOptions out;
  out.updateWeightsEvery = options.getInt("update_weights_every", out.updateWeightsEvery, 1);
  out.optimNiter = options.getInt("optim_niter", out.optimNiter, 1, 100000);
  out.maxNorm = options.getDouble("max_norm", out.maxNorm, 0.0, 1e300);
  out.gradients = detail::readGradientSpace(options);
  return out;
}

NashMtl::NashMtl(NashMtlOptions options, std::vector<TaskSpec> tasks)
    : options_(options), tasks_(std::move(tasks)), alpha_(tasks_.size(), 1.0) {}

void NashMtl::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "nash_mtl");
}

std::vector<std::string> NashMtl::diagnosticNames() const {
  return {"updated", "solved", "iterations", "residual", "norm"};
}

StepOutput NashMtl::step(const StepInput& input) {
  const std::size_t n = tasks_.size();
  const torch::Tensor losses = detail::stackLosses(input.losses, n, "nash_mtl");
  const bool update = steps_ % options_.updateWeightsEvery == 0;
  ++steps_;
  StepOutput out;
  out.diagnostics.assign(5, 0.0);
  if (!update && options_.maxNorm == 0.0) {
    out.kind = StepOutput::Kind::kObjective;
    out.objective = detail::weightedSum(losses, alpha_);
    out.weights = detail::reportedWeights(alpha_, losses);
    return out;
  }
  const torch::Tensor& g = detail::taskMatrix(input.gradients, options_.gradients);
  if (update) {
    const detail::Gram gram = detail::gramOf(g, static_cast<int64_t>(n), "nash_mtl");
    const detail::FairWeights solution = detail::solveNashMtl(gram, alpha_, options_.optimNiter);
    alpha_ = solution.weights;
    out.diagnostics[0] = 1.0;
    out.diagnostics[1] = solution.solved ? 1.0 : 0.0;
    out.diagnostics[2] = static_cast<double>(solution.iterations);
    out.diagnostics[3] = detail::fairResidual(gram, 1.0, alpha_);
  } else if (g.dim() != 2 || g.size(0) != static_cast<int64_t>(n)) {
    throw std::invalid_argument(
        fmt::format("nash_mtl: expected a gradient matrix with {} rows", n));
  }
  torch::Tensor direction = detail::combineRows(g, alpha_);
  const double norm = direction.norm().item<double>();
  out.diagnostics[4] = norm;
  if (options_.maxNorm > 0.0) {
    const double coefficient = options_.maxNorm / (norm + 1e-6);
    if (coefficient < 1.0) direction = direction * coefficient;
  }
  out.kind = detail::kindOf(options_.gradients);
  out.direction = direction;
  out.weights = detail::reportedWeights(alpha_, losses);
  return out;
}

StrategyState NashMtl::state() const {
  return {{"alpha", detail::stateVector(alpha_)}, {"step", torch::tensor(steps_)}};
}

void NashMtl::loadState(const StrategyState& state) {
  std::vector<double> alpha =
      detail::toDoubles(detail::requireState(state, "alpha", 1, "nash_mtl"));
  if (alpha.size() != tasks_.size()) {
    throw std::invalid_argument(fmt::format(
        "nash_mtl: checkpoint 'alpha' has {} entries, expected {}", alpha.size(), tasks_.size()));
  }
  for (double a : alpha) {
    if (!(a > 0.0) || !std::isfinite(a)) {
      throw std::invalid_argument(
          fmt::format("nash_mtl: checkpoint 'alpha' holds {}, expected positive values", a));
    }
  }
  const int64_t steps = detail::requireState(state, "step", 0, "nash_mtl").item<int64_t>();
  if (steps < 0) throw std::invalid_argument("nash_mtl: checkpoint 'step' is negative");
  alpha_ = std::move(alpha);
  steps_ = steps;
}

}  // namespace fulcrum
