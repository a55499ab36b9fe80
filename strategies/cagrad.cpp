#include "strategies/cagrad.h"

#include <cmath>

#include <torch/torch.h>

#include "strategies/cagrad_dual.h"
#include "strategies/support.h"

namespace fulcrum {

CaGradOptions readCaGradOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  (void)tasks;
  CaGradOptions out;
  out.c = options.getDouble("c", out.c, 0.0, 100.0);
  out.rescale = options.getInt("rescale", out.rescale, 0, 2);
  out.gradients = detail::readGradientSpace(options);
  out.maxIterations = options.getInt("max_iterations", out.maxIterations, 1, 1000000);
  return out;
}

CaGrad::CaGrad(CaGradOptions options, std::vector<TaskSpec> tasks)
    : options_(options), tasks_(std::move(tasks)) {}

void CaGrad::attach(const StrategyContext& context) { detail::checkSameTasks(tasks_, context.tasks, "cagrad"); }

std::vector<std::string> CaGrad::diagnosticNames() const {
  std::vector<std::string> names{"iterations"};
  for (auto& name : detail::perTaskNames("weight_", tasks_)) names.push_back(name);
  return names;
}

StepOutput CaGrad::step(const StepInput& input) {
  const std::size_t n = tasks_.size();
  const torch::Tensor losses = detail::stackLosses(input.losses, n, "cagrad");
  const torch::Tensor& g = detail::taskMatrix(input.gradients, options_.gradients);
  const detail::Gram gram = detail::gramOf(g, static_cast<int64_t>(n), "cagrad");

  const detail::SimplexSolution dual = detail::solveCagradDual(gram, options_.c, options_.maxIterations);
  double meanSquared = 0.0, gwSquared = 0.0;  // ‖g₀‖², ‖g_w‖²
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      meanSquared += gram.m[i * n + j];
      gwSquared += dual.weights[i] * gram.m[i * n + j] * dual.weights[j];
    }
  }
  meanSquared /= static_cast<double>(n * n);
  const double root = options_.c * std::sqrt(std::max(meanSquared, 0.0));  // √φ
  const double gwNorm = std::sqrt(std::max(gwSquared, 0.0));
  // d = Σ_i (1/T + λ w_i) g_i with λ = √φ/‖g_w‖; λ = 0 where it is undefined.
  const double lambda = root > 0.0 && gwNorm > 1e-12 * std::sqrt(meanSquared) ? root / gwNorm : 0.0;
  const double divisor = options_.rescale == 1   ? 1.0 + options_.c * options_.c
                         : options_.rescale == 2 ? 1.0 + options_.c
                                                 : 1.0;
  std::vector<double> effective(n);
  for (std::size_t i = 0; i < n; ++i) {
    effective[i] = (1.0 / static_cast<double>(n) + lambda * dual.weights[i]) / divisor;
  }

  StepOutput out;
  out.kind = detail::kindOf(options_.gradients);
  out.direction = detail::combineRows(g, effective);
  out.weights = detail::reportedWeights(std::vector<double>(n, 1.0), losses);
  out.diagnostics.push_back(static_cast<double>(dual.iterations));
  for (double w : effective) out.diagnostics.push_back(w);
  return out;
}

}  // namespace fulcrum
