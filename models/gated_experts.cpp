#include "models/gated_experts.h"

#include <fmt/format.h>
#include <torch/torch.h>

namespace fulcrum {

namespace nn = torch::nn;

GatedExpertsModel::GatedExpertsModel(std::vector<TrunkParts> sharedExperts,
                                     std::vector<std::vector<TrunkParts>> taskExperts,
                                     const std::vector<nn::Linear>& gates,
                                     const std::vector<nn::Sequential>& heads) {
  lastLayers_ = lastLinearsOf(sharedExperts);
  experts_ = register_module("experts", moduleListOf(sharedExperts));
  taskExperts_ = nn::ModuleList();
  for (auto& own : taskExperts) taskExperts_->push_back(moduleListOf(own));
  register_module("task_experts", taskExperts_);
  gates_ = nn::ModuleList();
  for (const auto& gate : gates) gates_->push_back(gate);
  register_module("gates", gates_);
  heads_ = register_module("heads", moduleListOf(heads));
}

torch::Tensor GatedExpertsModel::gate(std::size_t task, const torch::Tensor& input) {
  return torch::softmax(gates_->ptr<nn::LinearImpl>(task)->forward(input.flatten(1)), 1);
}

ModelOutput GatedExpertsModel::forward(const ModelInputs& inputs) {
  ModelOutput out;
  const std::size_t tasks = taskCount();
  std::vector<torch::Tensor> shared;  // the shared experts' outputs on the current input
  for (std::size_t t = 0; t < tasks; ++t) {
    const torch::Tensor& x = inputOf(inputs, t, tasks);
    if (t == 0 || inputs.size() > 1) {
      shared.clear();
      for (const auto& expert : *experts_) {
        shared.push_back(expert->as<nn::SequentialImpl>()->forward(x));
        if (!perTaskFeatures_) out.features.push_back(shared.back());
      }
    }
    std::vector<torch::Tensor> all = shared;
    for (const auto& expert : *taskExperts_->ptr<nn::ModuleListImpl>(t))
      all.push_back(expert->as<nn::SequentialImpl>()->forward(x));
    // B × 1 × E times B × E × D: the gate's mixture of the experts, B × D.
    const torch::Tensor mixture =
        torch::bmm(gate(t, x).unsqueeze(1), torch::stack(all, 1)).squeeze(1);
    if (perTaskFeatures_) out.features.push_back(mixture);
    out.outputs.push_back(heads_->ptr<nn::SequentialImpl>(t)->forward(mixture));
  }
  return out;
}

std::vector<torch::Tensor> GatedExpertsModel::sharedParameters() const {
  return experts_->parameters();
}

std::vector<torch::Tensor> GatedExpertsModel::taskParameters(std::size_t task) const {
  std::vector<torch::Tensor> out = taskExperts_->ptr(task)->parameters();
  for (const auto& p : gates_->ptr(task)->parameters()) out.push_back(p);
  for (const auto& p : heads_->ptr(task)->parameters()) out.push_back(p);
  return out;
}

std::vector<torch::Tensor> GatedExpertsModel::lastSharedLayer() const {
  return weightsAndBiases(lastLayers_);
}

std::vector<std::string> GatedExpertsModel::featureNames() const {
  if (perTaskFeatures_) return numberedNames("mixture", taskCount());
  return numberedNames("expert", experts_->size());
}

ModelPlan planGatedExperts(const ConfigNode& model, const ModelContext& context, int64_t shared,
                           int64_t perTask) {
  const TrunkPlan trunk = planTrunk(model.child("trunk"), context);
  const HeadPlan head = planHead(model.child("head"), context);
  const bool perTaskFeatures = readPerTaskFeatures(model);
  const auto tasks = static_cast<double>(context.tasks.size());
  const double experts = static_cast<double>(shared) + tasks * static_cast<double>(perTask);
  const auto inputs = static_cast<double>(exampleElements(context.inputShape));
  ModelPlan plan;
  plan.provides.lastSharedLayer = trunk.hasLastLinear;
  plan.size.parameters = experts * trunk.size.parameters +
                         tasks * (inputs + 1.0) * static_cast<double>(shared + perTask);
  plan.size.activationWidth = experts * trunk.size.activationWidth;
  addHeadSize(plan.size, head, trunk.size.width);
  const std::vector<TaskSpec> taskList = context.tasks;
  plan.build = [trunk, head, taskList, shared, perTask,
                perTaskFeatures](const std::vector<int64_t>& inputShape) {
    const int64_t in = exampleElements(inputShape);
    std::vector<TrunkParts> sharedExperts;
    for (int64_t e = 0; e < shared; ++e) sharedExperts.push_back(trunk.build(inputShape));
    std::vector<std::vector<TrunkParts>> taskExperts(taskList.size());
    for (auto& own : taskExperts) {
      for (int64_t e = 0; e < perTask; ++e) own.push_back(trunk.build(inputShape));
    }
    const int64_t width = sharedExperts.front().width;
    std::vector<nn::Linear> gates;
    std::vector<nn::Sequential> heads;
    for (const auto& task : taskList) {
      gates.push_back(nn::Linear(in, shared + perTask));
      heads.push_back(head.build(width, task));
    }
    auto built = std::make_shared<GatedExpertsModel>(std::move(sharedExperts),
                                                     std::move(taskExperts), gates, heads);
    built->setPerTaskFeatures(perTaskFeatures);
    return built;
  };
  return plan;
}

}  // namespace fulcrum
