#include "models/hps.h"

#include <fmt/format.h>
#include <torch/torch.h>

namespace fulcrum {

HardSharingModel::HardSharingModel(TrunkParts trunk,
                                   const std::vector<torch::nn::Sequential>& heads, bool dense)
    : trunk_(std::move(trunk.layers)),
      lastShared_(std::move(trunk.lastLinear)),
      lastLayer_(std::move(trunk.lastLayer)),
      dense_(dense) {
  register_module("trunk", trunk_);
  heads_ = register_module("heads", moduleListOf(heads));
}

ModelOutput HardSharingModel::forward(const ModelInputs& inputs) {
  ModelOutput out;
  const std::size_t tasks = taskCount();
  for (std::size_t t = 0; t < tasks; ++t) {
    if (t == 0 || inputs.size() > 1)
      out.features.push_back(trunk_->forward(inputOf(inputs, t, tasks)));
    torch::Tensor y = heads_->ptr<torch::nn::SequentialImpl>(t)->forward(out.features.back());
    const torch::Tensor& x = inputOf(inputs, t, tasks);
    if (dense_ && (y.size(2) != x.size(2) || y.size(3) != x.size(3))) {
      namespace F = torch::nn::functional;
      y = F::interpolate(y, F::InterpolateFuncOptions()
                                .size(std::vector<int64_t>{x.size(2), x.size(3)})
                                .mode(torch::kBilinear)
                                .align_corners(true));
    }
    out.outputs.push_back(y);
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
  return lastShared_.is_empty() ? lastLayer_ : weightsAndBiases(lastShared_);
}

std::vector<std::string> HardSharingModel::featureNames() const { return {"z"}; }

ArchitectureInfo hardSharingArchitecture() {
  ArchitectureInfo row;
  row.name = "hps";
  row.description = "hard parameter sharing: one trunk, one head per task";
  row.reference = "Caruana, Machine Learning 1997";
  row.plan = [](const ConfigNode& model, const ModelContext& context) {
    ModelContext spatial = context;
    spatial.spatial = true;
    const TrunkPlan trunk = planTrunk(model.child("trunk"), spatial);
    const HeadPlan head = planHead(model.child("head"), spatial);
    if (trunk.spatial && !hasDenseTask(context.tasks)) {
      model.child("trunk").fail(
          "kind", fmt::format("trunk '{}' yields feature maps, for dense tasks (segmentation, "
                              "depth, normals); these tasks predict one value per example",
                              trunk.kind));
    }
    if (trunk.spatial != head.spatial) {
      // At the kind the file wrote (a dense task's default head is conv).
      const bool headWritten = model.has("head") && model.child("head").has("kind");
      if (!headWritten && model.has("trunk")) {
        model.child("trunk").fail(
            "kind", fmt::format("head '{}' (the default for these tasks) works on feature maps: "
                                "the trunk must be a spatial one (segnet)",
                                head.kind));
      }
      model.child("head").fail(
          "kind", trunk.spatial ? fmt::format("trunk '{}' yields feature maps: the head must be "
                                              "a spatial one (conv)",
                                              trunk.kind)
                                : fmt::format("head '{}' works on feature maps: the trunk must "
                                              "be a spatial one (segnet)",
                                              head.kind));
    }
    ModelPlan plan;
    plan.denseOutputs = head.spatial;
    plan.provides.lastSharedLayer = trunk.hasLastLinear;
    plan.size = trunk.size;
    addHeadSize(plan.size, head, trunk.size.width);
    const std::vector<TaskSpec> tasks = context.tasks;
    plan.build = [trunk, head, tasks](const std::vector<int64_t>& inputShape) {
      TrunkParts parts = trunk.build(inputShape);
      const auto heads = buildHeads(head, parts.width, tasks);
      return std::make_shared<HardSharingModel>(std::move(parts), heads, head.spatial);
    };
    return plan;
  };
  return row;
}

}  // namespace fulcrum
