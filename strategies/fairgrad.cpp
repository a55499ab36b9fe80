#include "strategies/fairgrad.h"

#include <algorithm>

#include <torch/torch.h>

#include "strategies/fair_weights.h"
#include "strategies/support.h"

namespace fulcrum {

FairGradOptions readFairGradOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  (void)tasks;
  FairGradOptions out;
  out.alpha = options.getDouble("alpha", out.alpha, 0.01, 100.0);
  out.maxIterations = options.getInt("max_iterations", out.maxIterations, 1, 100000);
  out.maxNorm = options.getDouble("max_norm", out.maxNorm, 0.0, 1e300);
  out.scaleByTasks = options.getBool("scale_by_tasks", out.scaleByTasks);
  out.weightsOnHeads = options.getString("head_weights", "one", {"one", "w"}) == "w";
  out.gradients = detail::readGradientSpace(options);
  return out;
}

FairGrad::FairGrad(FairGradOptions options, std::vector<TaskSpec> tasks)
    : options_(options), tasks_(std::move(tasks)) {}

void FairGrad::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "fairgrad");
}

std::vector<std::string> FairGrad::diagnosticNames() const {
  std::vector<std::string> names{"solved", "iterations", "residual", "norm"};
  for (auto& name : detail::perTaskNames("w_", tasks_)) names.push_back(name);
  return names;
}

StepOutput FairGrad::step(const StepInput& input) {
  const std::size_t n = tasks_.size();
  const torch::Tensor losses = detail::stackLosses(input.losses, n, "fairgrad");
  const torch::Tensor& g = detail::taskMatrix(input.gradients, options_.gradients);
  const detail::Gram gram = detail::gramOf(g, static_cast<int64_t>(n), "fairgrad");

  double largest = 0.0;
  for (std::size_t i = 0; i < n; ++i) largest = std::max(largest, gram.m[i * n + i]);
  std::vector<std::size_t> active;
  for (std::size_t i = 0; i < n; ++i) {
    if (largest > 0.0 && gram.m[i * n + i] > 1e-20 * largest) active.push_back(i);
  }
  // Every gradient zero: nothing to solve, and d = 0 whatever w is; the heads
  // (head_weights: w) then get 1/T, the official solver's starting point.
  std::vector<double> w(n, active.empty() ? 1.0 / static_cast<double>(n) : 0.0);
  detail::FairWeights solution;
  double residual = 0.0;
  if (!active.empty()) {
    detail::Gram sub;
    sub.n = static_cast<int64_t>(active.size());
    for (std::size_t a : active) {
      for (std::size_t b : active) sub.m.push_back(gram.m[a * n + b]);
    }
    solution = detail::solveFairWeights(sub, options_.alpha, options_.maxIterations);
    if (!solution.solved) {
      const int64_t newtonIterations = solution.iterations;
      solution = detail::fairLeastSquares(sub, options_.alpha);
      solution.iterations += newtonIterations;
    }
    for (std::size_t k = 0; k < active.size(); ++k) w[active[k]] = solution.weights[k];
    residual = detail::fairResidual(sub, options_.alpha, solution.weights);
  }

  const double factor = options_.scaleByTasks ? static_cast<double>(n) : 1.0;
  std::vector<double> effective(n);
  for (std::size_t i = 0; i < n; ++i) effective[i] = factor * w[i];
  torch::Tensor direction = detail::combineRows(g, effective);
  const double norm = direction.norm().item<double>();
  if (options_.maxNorm > 0.0) {
    const double coefficient = options_.maxNorm / (norm + 1e-6);
    if (coefficient < 1.0) direction = direction * coefficient;
  }

  StepOutput out;
  out.kind = detail::kindOf(options_.gradients);
  out.direction = direction;
  out.weights =
      detail::reportedWeights(options_.weightsOnHeads ? w : std::vector<double>(n, 1.0), losses);
  out.diagnostics = {solution.solved ? 1.0 : 0.0, static_cast<double>(solution.iterations),
                     residual, norm};
  for (double v : w) out.diagnostics.push_back(v);
  return out;
}

}  // namespace fulcrum
