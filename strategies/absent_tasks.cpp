#include "strategies/absent_tasks.h"

#include <stdexcept>
#include <utility>

#include <torch/torch.h>

namespace fulcrum {

namespace {

/// The present rows of another source's matrices, each selected at most once
/// per step.
class SubsetGradientSource : public GradientSource {
 public:
  SubsetGradientSource(GradientSource& parent, torch::Tensor rows) : parent_(parent), rows_(std::move(rows)) {}
  const torch::Tensor& sharedParameters() override { return pick(shared_, parent_.sharedParameters()); }
  const torch::Tensor& lastSharedLayer() override { return pick(lastLayer_, parent_.lastSharedLayer()); }
  const torch::Tensor& representation() override { return pick(representation_, parent_.representation()); }

 private:
  const torch::Tensor& pick(torch::Tensor& cache, const torch::Tensor& full) {
    if (!cache.defined()) cache = full.index_select(0, rows_.to(full.device()));
    return cache;
  }
  GradientSource& parent_;
  torch::Tensor rows_;
  torch::Tensor shared_, lastLayer_, representation_;
};

}  // namespace

AbsentTaskAdapter::AbsentTaskAdapter(std::unique_ptr<Strategy> inner, StrategyFactory factory,
                                     const ConfigNode& options, std::vector<TaskSpec> tasks)
    : inner_(std::move(inner)),
      factory_(std::move(factory)),
      options_(YAML::Clone(options.yaml())),
      file_(options.file()),
      keyPath_(options.keyPath()),
      tasks_(std::move(tasks)) {}

void AbsentTaskAdapter::attach(const StrategyContext& context) {
  context_ = context;
  inner_->attach(context);
}

Strategy& AbsentTaskAdapter::copyFor(const std::vector<std::size_t>& present) {
  auto found = copies_.find(present);
  if (found != copies_.end()) return *found->second;
  std::vector<TaskSpec> tasks;
  for (std::size_t i : present) tasks.push_back(tasks_[i]);
  // Per-task lists (fixed weights, leaks, preferences, nadir points) keep the
  // present tasks' entries.
  YAML::Node options = YAML::Clone(options_);
  if (options.IsMap()) {
    for (auto it = options.begin(); it != options.end(); ++it) {
      if (it->second.IsSequence() && it->second.size() == tasks_.size() && tasks_.size() > 1) {
        YAML::Node cut(YAML::NodeType::Sequence);
        for (std::size_t i : present) cut.push_back(it->second[i]);
        it->second = cut;
      }
    }
  }
  const ConfigNode node(options, file_, keyPath_);
  std::unique_ptr<Strategy> copy = factory_(node, tasks);
  StrategyContext context = context_;
  context.tasks = tasks;
  copy->attach(context);
  return *copies_.emplace(present, std::move(copy)).first->second;
}

StepOutput AbsentTaskAdapter::step(const StepInput& input) {
  lastCopy_ = nullptr;
  if (input.present.empty()) return inner_->step(input);
  if (input.present.size() != tasks_.size()) {
    throw std::invalid_argument("StepInput::present must hold one flag per task");
  }
  std::vector<std::size_t> present;
  for (std::size_t i = 0; i < tasks_.size(); ++i) {
    if (input.present[i]) present.push_back(i);
  }
  if (present.size() == tasks_.size()) return inner_->step(input);
  StepOutput out;
  if (present.empty()) {
    // No label at all: the losses are exact zeros, so is this objective's gradient.
    out.kind = StepOutput::Kind::kObjective;
    out.objective = torch::stack(input.losses).sum() * 0.0;
    out.weights = torch::zeros({static_cast<int64_t>(tasks_.size())}, torch::kFloat32);
    return out;
  }
  std::vector<int64_t> indices(present.begin(), present.end());
  const torch::Tensor rows = torch::tensor(indices, torch::kInt64);
  std::vector<torch::Tensor> losses;
  for (std::size_t i : present) losses.push_back(input.losses[i]);
  SubsetGradientSource source(input.gradients, rows);
  Strategy& copy = copyFor(present);
  out = copy.step(StepInput{losses, source, input.step, input.epoch, {}});
  torch::Tensor weights = torch::zeros({static_cast<int64_t>(tasks_.size())}, torch::kFloat32);
  weights.index_copy_(0, rows, out.weights.detach().to(torch::kCPU, torch::kFloat32).reshape({-1}));
  out.weights = weights.to(out.weights.device());
  out.diagnostics.clear();
  lastCopy_ = &copy;
  lastPresent_ = present;
  return out;
}

void AbsentTaskAdapter::afterStep(const std::vector<double>& lossesAfter) {
  if (lastCopy_ == nullptr) {
    inner_->afterStep(lossesAfter);
    return;
  }
  if (!lastCopy_->wantsLossesAfterStep()) return;
  std::vector<double> present;
  for (std::size_t i : lastPresent_) present.push_back(lossesAfter.at(i));
  lastCopy_->afterStep(present);
}

}  // namespace fulcrum
