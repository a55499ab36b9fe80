#include "models/soft_sharing.h"

#include <torch/torch.h>

namespace fulcrum {

namespace nn = torch::nn;

SoftSharingModel::SoftSharingModel(std::vector<TrunkParts> trunks, double penalty,
                                   const std::vector<nn::Sequential>& heads)
    : lambda_(penalty) {
  trunks_ = register_module("trunks", moduleListOf(trunks));
  heads_ = register_module("heads", moduleListOf(heads));
}

ModelOutput SoftSharingModel::forward(const ModelInputs& inputs) {
  ModelOutput out;
  const std::size_t tasks = taskCount();
  for (std::size_t t = 0; t < tasks; ++t) {
    const torch::Tensor z = trunks_->ptr<nn::SequentialImpl>(t)->forward(inputOf(inputs, t, tasks));
    out.outputs.push_back(heads_->ptr<nn::SequentialImpl>(t)->forward(z));
  }
  out.extraLosses.push_back(penalty());
  return out;
}

torch::Tensor SoftSharingModel::penalty() const {
  std::vector<std::vector<torch::Tensor>> parameters;
  for (const auto& trunk : *trunks_) parameters.push_back(trunk->parameters());
  torch::Tensor total = torch::zeros({}, parameters.front().front().options());
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    for (std::size_t j = i + 1; j < parameters.size(); ++j) {
      for (std::size_t k = 0; k < parameters[i].size(); ++k)
        total = total + (parameters[i][k] - parameters[j][k]).square().sum();
    }
  }
  return lambda_ * total;
}

std::vector<torch::Tensor> SoftSharingModel::taskParameters(std::size_t task) const {
  std::vector<torch::Tensor> out = trunks_->ptr(task)->parameters();
  for (const auto& p : heads_->ptr(task)->parameters()) out.push_back(p);
  return out;
}

ArchitectureInfo softSharingArchitecture() {
  ArchitectureInfo row;
  row.name = "soft_sharing";
  row.description = "one trunk per task, tied by λ Σ_{i<j} ‖θ_i − θ_j‖²";
  row.reference = "Duong, Cohn, Bird, Cook, ACL 2015";
  row.plan = [](const ConfigNode& model, const ModelContext& context) {
    const double penalty = model.requireDouble("penalty", 0.0, 1e6);
    const TrunkPlan trunk = planTrunk(model.child("trunk"), context);
    const HeadPlan head = planHead(model.child("head"), context);
    const auto tasks = static_cast<double>(context.tasks.size());
    ModelPlan plan;
    plan.provides = {/*features=*/false, /*lastSharedLayer=*/false, /*sharedParameters=*/false};
    plan.size.parameters = tasks * trunk.size.parameters;
    plan.size.activationWidth = tasks * trunk.size.activationWidth;
    addHeadSize(plan.size, head, trunk.size.width);
    const std::vector<TaskSpec> taskList = context.tasks;
    plan.build = [=](const std::vector<int64_t>& inputShape) {
      std::vector<TrunkParts> trunks;
      for (std::size_t t = 0; t < taskList.size(); ++t) trunks.push_back(trunk.build(inputShape));
      const auto heads = buildHeads(head, trunks.front().width, taskList);
      return std::make_shared<SoftSharingModel>(std::move(trunks), penalty, heads);
    };
    return plan;
  };
  return row;
}

}  // namespace fulcrum
