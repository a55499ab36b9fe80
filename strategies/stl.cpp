#include "strategies/stl.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <stdexcept>

#include "strategies/support.h"

namespace fulcrum {

std::size_t readStlTask(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  const std::string name = options.getString("task", tasks.empty() ? "" : tasks.front().name);
  for (std::size_t t = 0; t < tasks.size(); ++t)
    if (tasks[t].name == name) return t;
  options.fail("task", fmt::format("no task '{}' (tasks: {})", name, detail::taskNames(tasks)));
}

SingleTask::SingleTask(std::size_t task, std::vector<TaskSpec> tasks)
    : task_(task), tasks_(std::move(tasks)) {
  if (task_ >= tasks_.size())
    throw std::invalid_argument(fmt::format("stl: task {} of {} tasks", task_, tasks_.size()));
}

void SingleTask::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "stl");
}

StepOutput SingleTask::step(const StepInput& input) {
  const torch::Tensor losses = detail::stackLosses(input.losses, tasks_.size(), "stl");
  std::vector<double> weights(tasks_.size(), 0.0);
  weights[task_] = 1.0;
  StepOutput out;
  out.kind = StepOutput::Kind::kObjective;
  out.objective = detail::weightedSum(losses, weights);  // every loss in the graph
  out.weights = detail::reportedWeights(weights, losses);
  return out;
}

}  // namespace fulcrum
