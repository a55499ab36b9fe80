#include "strategies/mgda.h"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>
#include <torch/torch.h>

#include "strategies/min_norm.h"
#include "strategies/support.h"

namespace fulcrum {

MgdaOptions readMgdaOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  (void)tasks;
  MgdaOptions out;
  const std::string normalization =
      options.getString("normalization", "none", {"none", "l2", "loss", "loss+"});
  out.normalization = normalization == "l2"     ? MgdaNormalization::kL2
                      : normalization == "loss" ? MgdaNormalization::kLoss
                      : normalization == "loss+" ? MgdaNormalization::kLossPlus
                                                 : MgdaNormalization::kNone;
  out.gradients = detail::readGradientSpace(options);
  out.alphaOnHeads = options.getString("head_weights", "one", {"one", "alpha"}) == "alpha";
  out.maxIterations = options.getInt("max_iterations", out.maxIterations, 1, 100000);
  out.tolerance = options.getDouble("tolerance", out.tolerance, 1e-300, 1.0);
  return out;
}

Mgda::Mgda(MgdaOptions options, std::vector<TaskSpec> tasks)
    : options_(options), tasks_(std::move(tasks)) {}

void Mgda::attach(const StrategyContext& context) { detail::checkSameTasks(tasks_, context.tasks, "mgda"); }

std::vector<std::string> Mgda::diagnosticNames() const {
  std::vector<std::string> names{"iterations"};
  for (auto& name : detail::perTaskNames("alpha_", tasks_)) names.push_back(name);
  return names;
}

StepOutput Mgda::step(const StepInput& input) {
  const auto taskCount = static_cast<int64_t>(tasks_.size());
  const torch::Tensor losses = detail::stackLosses(input.losses, tasks_.size(), "mgda");
  const torch::Tensor& g = detail::taskMatrix(input.gradients, options_.gradients);
  detail::Gram gram = detail::gramOf(g, taskCount, "mgda");

  std::vector<double> scale(tasks_.size(), 1.0);
  const std::vector<double> lossValues = detail::toDoubles(losses);
  for (int64_t i = 0; i < taskCount; ++i) {
    const auto k = static_cast<std::size_t>(i);
    const double norm = std::sqrt(gram.at(i, i));
    const bool byNorm = options_.normalization == MgdaNormalization::kL2 ||
                        options_.normalization == MgdaNormalization::kLossPlus;
    const bool byLoss = options_.normalization == MgdaNormalization::kLoss ||
                        options_.normalization == MgdaNormalization::kLossPlus;
    if (byLoss && !(lossValues[k] > 0.0)) {
      throw std::invalid_argument(fmt::format(
          "mgda: normalization by the loss needs positive losses; task '{}' has loss {}",
          tasks_[k].name, lossValues[k]));
    }
    // A zero gradient stays zero under any positive scale (and makes the
    // min-norm point 0 anyway), so it keeps scale 1 instead of dividing by 0.
    if (byNorm && norm > 0.0) scale[k] *= norm;
    if (byLoss) scale[k] *= lossValues[k];
  }
  for (int64_t i = 0; i < taskCount; ++i) {
    for (int64_t j = 0; j < taskCount; ++j) {
      gram.at(i, j) /= scale[static_cast<std::size_t>(i)] * scale[static_cast<std::size_t>(j)];
    }
  }
  const detail::SimplexSolution solution =
      detail::minNormElement(gram, options_.maxIterations, options_.tolerance);

  StepOutput out;
  out.kind = detail::kindOf(options_.gradients);
  out.direction = detail::combineRows(g, solution.weights);
  out.weights = detail::reportedWeights(
      options_.alphaOnHeads ? solution.weights : std::vector<double>(tasks_.size(), 1.0), losses);
  out.diagnostics.push_back(static_cast<double>(solution.iterations));
  for (double a : solution.weights) out.diagnostics.push_back(a);
  return out;
}

}  // namespace fulcrum
