#include "strategies/pcgrad.h"

#include <numeric>
#include <random>

#include <torch/torch.h>

#include "strategies/support.h"

namespace fulcrum {

PcGradOptions readPcGradOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  (void)tasks;
  PcGradOptions out;
  out.gradients = detail::readGradientSpace(options);
  return out;
}

PcGrad::PcGrad(PcGradOptions options, std::vector<TaskSpec> tasks)
    : options_(options), tasks_(std::move(tasks)) {}

void PcGrad::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "pcgrad");
  seed_ = context.seed;
}

std::vector<std::string> PcGrad::diagnosticNames() const {
  std::vector<std::string> names{"projections"};
  for (auto& name : detail::perTaskNames("weight_", tasks_)) names.push_back(name);
  return names;
}

StepOutput PcGrad::step(const StepInput& input) {
  const std::size_t n = tasks_.size();
  const torch::Tensor losses = detail::stackLosses(input.losses, n, "pcgrad");
  const torch::Tensor& g = detail::taskMatrix(input.gradients, options_.gradients);
  const detail::Gram gram = detail::gramOf(g, static_cast<int64_t>(n), "pcgrad");

  std::mt19937_64 rng = detail::stepGenerator(seed_, input.step);

  // coefficients[i][k]: g_i^PC = Σ_k coefficients[i][k] g_k.
  std::vector<std::vector<double>> coefficients(n, std::vector<double>(n, 0.0));
  int projections = 0;
  for (std::size_t i = 0; i < n; ++i) {
    coefficients[i][i] = 1.0;
    for (std::size_t j : detail::othersInRandomOrder(i, n, rng)) {
      const double normSquared = gram.m[j * n + j];
      if (!(normSquared > 0.0)) continue;  // a zero g_j conflicts with nothing
      double product = 0.0;  // g_i^PC · g_j
      for (std::size_t k = 0; k < n; ++k) product += coefficients[i][k] * gram.m[k * n + j];
      if (product < 0.0) {
        coefficients[i][j] -= product / normSquared;
        ++projections;
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
  out.diagnostics.push_back(static_cast<double>(projections));
  for (double w : effective) out.diagnostics.push_back(w);
  return out;
}

}  // namespace fulcrum
