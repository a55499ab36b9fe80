#include "strategies/fixed.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <numeric>
#include <stdexcept>

#include "strategies/support.h"

namespace fulcrum {

FixedOptions readFixedOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  FixedOptions out;
  out.normalize = options.getBool("normalize", out.normalize);
  // No bounds here: the > 0 check below names the task, which a range check cannot.
  out.weights = options.getDoubleList("weights", std::vector<double>(tasks.size(), 1.0));
  if (out.weights.size() != tasks.size()) {
    options.fail("weights",
                 fmt::format("expected {} weights (one per task: {}), got {}", tasks.size(),
                             detail::taskNames(tasks), out.weights.size()));
  }
  for (std::size_t i = 0; i < out.weights.size(); ++i) {
    if (!(out.weights[i] > 0.0) || !std::isfinite(out.weights[i])) {
      options.fail("weights",
                   fmt::format("weights[{}] (task {}) must be a finite number > 0, got {}", i,
                               tasks[i].name, out.weights[i]));
    }
  }
  return out;
}

FixedWeights::FixedWeights(FixedOptions options, std::vector<TaskSpec> tasks)
    : tasks_(std::move(tasks)), alpha_(std::move(options.weights)) {
  if (alpha_.empty()) alpha_.assign(tasks_.size(), 1.0);
  if (alpha_.size() != tasks_.size()) {
    throw std::invalid_argument(fmt::format("fixed: expected {} weights (one per task: {}), got {}",
                                            tasks_.size(), detail::taskNames(tasks_),
                                            alpha_.size()));
  }
  for (std::size_t i = 0; i < alpha_.size(); ++i) {
    if (!(alpha_[i] > 0.0) || !std::isfinite(alpha_[i])) {
      throw std::invalid_argument(
          fmt::format("fixed: weights[{}] (task {}) must be a finite number > 0, got {}", i,
                      tasks_[i].name, alpha_[i]));
    }
  }
  if (options.normalize) {
    const double sum = std::accumulate(alpha_.begin(), alpha_.end(), 0.0);
    for (double& a : alpha_) a /= sum;
  }
}

void FixedWeights::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "fixed");
}

StepOutput FixedWeights::step(const StepInput& input) {
  const torch::Tensor losses = detail::stackLosses(input.losses, tasks_.size(), "fixed");
  StepOutput out;
  out.kind = StepOutput::Kind::kObjective;
  out.objective = detail::weightedSum(losses, alpha_);
  out.weights = detail::reportedWeights(alpha_, losses);
  return out;
}

}  // namespace fulcrum
