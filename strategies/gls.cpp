#include "strategies/gls.h"

#include <torch/torch.h>

#include "strategies/support.h"

namespace fulcrum {

void readGlsOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  (void)options;
  (void)tasks;
}

GeometricLossStrategy::GeometricLossStrategy(std::vector<TaskSpec> tasks) : tasks_(std::move(tasks)) {}

void GeometricLossStrategy::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "gls");
}

StepOutput GeometricLossStrategy::step(const StepInput& input) {
  const torch::Tensor losses = detail::stackLosses(input.losses, tasks_.size(), "gls");
  StepOutput out;
  out.kind = StepOutput::Kind::kObjective;
  out.objective = losses.log().mean().exp();
  const auto count = static_cast<double>(tasks_.size());
  out.weights = (out.objective.detach() / (count * losses.detach())).to(torch::kFloat32);
  return out;
}

}  // namespace fulcrum
