#include "models/hps.h"

#include <torch/torch.h>

namespace fulcrum {

HardSharingModel::HardSharingModel(TrunkParts trunk,
                                   const std::vector<torch::nn::Sequential>& heads)
    : trunk_(std::move(trunk.layers)), lastShared_(std::move(trunk.lastLinear)) {
  register_module("trunk", trunk_);
  heads_ = register_module("heads", moduleListOf(heads));
}

ModelOutput HardSharingModel::forward(const ModelInputs& inputs) {
  ModelOutput out;
  const std::size_t tasks = taskCount();
  for (std::size_t t = 0; t < tasks; ++t) {
    if (t == 0 || inputs.size() > 1)
      out.features.push_back(trunk_->forward(inputOf(inputs, t, tasks)));
    out.outputs.push_back(heads_->ptr<torch::nn::SequentialImpl>(t)->forward(out.features.back()));
  }
  return out;
}

std::vector<torch::Tensor> HardSharingModel::sharedParameters() const {
  return trunk_->parameters();
}

std::vector<torch::Tensor> HardSharingModel::taskParameters(std::size_t task) const {
  return heads_->ptr(task)->parameters();
}

std::vector<torch::Tensor> HardSharingModel::lastSharedLayer() const {
  return weightsAndBiases(lastShared_);
}

std::vector<std::string> HardSharingModel::featureNames() const { return {"z"}; }

ArchitectureInfo hardSharingArchitecture() {
  ArchitectureInfo row;
  row.name = "hps";
  row.description = "hard parameter sharing: one trunk, one head per task";
  row.reference = "Caruana, Machine Learning 1997";
  row.plan = [](const ConfigNode& model, const ModelContext& context) {
    const TrunkPlan trunk = planTrunk(model.child("trunk"), context);
    const HeadPlan head = planHead(model.child("head"), context);
    ModelPlan plan;
    plan.provides.lastSharedLayer = trunk.hasLastLinear;
    plan.size = trunk.size;
    addHeadSize(plan.size, head, trunk.size.width);
    const std::vector<TaskSpec> tasks = context.tasks;
    plan.build = [trunk, head, tasks](const std::vector<int64_t>& inputShape) {
      TrunkParts parts = trunk.build(inputShape);
      const auto heads = buildHeads(head, parts.width, tasks);
      return std::make_shared<HardSharingModel>(std::move(parts), heads);
    };
    return plan;
  };
  return row;
}

}  // namespace fulcrum
