#include "strategies/gradvac.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include "strategies/support.h"

namespace fulcrum {

GradVacOptions readGradVacOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  (void)tasks;
  GradVacOptions out;
  out.beta = options.getDouble("beta", out.beta, 0.0, 1.0);
  out.emaUpdate =
      options.getString("ema_update", "always", {"always", "on_correction"}) == "on_correction"
          ? GradVacEmaUpdate::kOnCorrection
          : GradVacEmaUpdate::kAlways;
  out.gradients = detail::readGradientSpace(options);
  return out;
}

GradVac::GradVac(GradVacOptions options, std::vector<TaskSpec> tasks)
    : options_(options),
      tasks_(std::move(tasks)),
      targets_(tasks_.size(), std::vector<double>(tasks_.size(), 0.0)) {}

void GradVac::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "gradvac");
  seed_ = context.seed;
  targets_.assign(tasks_.size(), std::vector<double>(tasks_.size(), 0.0));
}

std::vector<std::string> GradVac::diagnosticNames() const {
  std::vector<std::string> names{"corrections"};
  for (auto& name : detail::perTaskNames("weight_", tasks_)) names.push_back(name);
  return names;
}

StepOutput GradVac::step(const StepInput& input) {
  const std::size_t n = tasks_.size();
  const torch::Tensor losses = detail::stackLosses(input.losses, n, "gradvac");
  const torch::Tensor& g = detail::taskMatrix(input.gradients, options_.gradients);
  const detail::Gram gram = detail::gramOf(g, static_cast<int64_t>(n), "gradvac");

  // Seeded from the step as PCGrad's orders, so the orders need no state;
  // the stream tag keeps GradVac's orders apart from PCGrad's.
  std::mt19937_64 rng = detail::stepGenerator(seed_, input.step, 0x47566163u);

  // coefficients[i][k]: g_i' = Σ_k coefficients[i][k] g_k.
  std::vector<std::vector<double>> coefficients(n, std::vector<double>(n, 0.0));
  int corrections = 0;
  for (std::size_t i = 0; i < n; ++i) {
    coefficients[i][i] = 1.0;
    for (std::size_t j : detail::othersInRandomOrder(i, n, rng)) {
      const std::vector<double>& c = coefficients[i];
      double normSquared = 0.0, product = 0.0;  // ‖g_i'‖², g_i'·g_j
      for (std::size_t k = 0; k < n; ++k) {
        product += c[k] * gram.m[k * n + j];
        for (std::size_t l = 0; l < n; ++l) normSquared += c[k] * gram.m[k * n + l] * c[l];
      }
      const double normI = std::sqrt(std::max(normSquared, 0.0));
      const double normJ = std::sqrt(std::max(gram.m[j * n + j], 0.0));
      if (!(normI > 0.0) || !(normJ > 0.0)) continue;  // no cosine with a zero gradient
      // Rounding can push a cosine of (anti)parallel gradients just past ±1.
      const double phi = std::clamp(product / (normI * normJ), -1.0, 1.0);
      double& target = targets_[i][j];
      const double targetSine = std::sqrt(std::max(1.0 - target * target, 0.0));
      const bool corrected = phi < target && targetSine > 0.0;
      if (corrected) {
        const double sine = std::sqrt(std::max(1.0 - phi * phi, 0.0));
        coefficients[i][j] += normI * (target * sine - phi * targetSine) / (normJ * targetSine);
        ++corrections;
      }
      if (corrected || options_.emaUpdate == GradVacEmaUpdate::kAlways) {
        target = (1.0 - options_.beta) * target + options_.beta * phi;
      }
    }
  }
  std::vector<double> effective(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < n; ++k) effective[k] += coefficients[i][k];
  }

  StepOutput out;
  out.kind = detail::kindOf(options_.gradients);
  out.direction = detail::combineRows(g, effective);
  out.weights = detail::reportedWeights(std::vector<double>(n, 1.0), losses);
  out.diagnostics.push_back(static_cast<double>(corrections));
  for (double w : effective) out.diagnostics.push_back(w);
  return out;
}

StrategyState GradVac::state() const {
  return {{"targets", detail::stateMatrix(targets_, tasks_.size())}};
}

void GradVac::loadState(const StrategyState& state) {
  const torch::Tensor& targets = detail::requireState(state, "targets", 2, "gradvac");
  const auto n = static_cast<int64_t>(tasks_.size());
  if (targets.size(0) != n || targets.size(1) != n) {
    throw std::invalid_argument(
        fmt::format("gradvac: checkpoint 'targets' is {}×{}, expected {}×{}", targets.size(0),
                    targets.size(1), n, n));
  }
  std::vector<std::vector<double>> rows = detail::matrixRows(targets);
  for (const auto& row : rows) {
    for (double value : row) {
      if (!(value >= -1.0 && value <= 1.0)) {
        throw std::invalid_argument(fmt::format(
            "gradvac: checkpoint 'targets' holds {}, outside the cosine range [-1, 1]", value));
      }
    }
  }
  targets_ = std::move(rows);
}

}  // namespace fulcrum
