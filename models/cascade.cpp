#include "models/cascade.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <limits>
#include <stdexcept>

namespace fulcrum {

namespace nn = torch::nn;

namespace {

/// logit(p) from log p (≤ 0): log p − log(1 − p), with log(1 − p) as
/// log(−expm1(log p)), exact to rounding for every log p < 0. log p is kept
/// below 0 by the smallest normal float so that p = 1 gives a large finite
/// logit rather than +inf.
torch::Tensor logitOfLog(const torch::Tensor& logP) {
  const torch::Tensor below = logP.clamp_max(-std::numeric_limits<float>::min());
  return below - torch::log(-torch::expm1(below));
}

}  // namespace

CascadeModel::CascadeModel(TrunkParts trunk, const std::vector<nn::Sequential>& towers)
    : trunk_(std::move(trunk.layers)), lastShared_(std::move(trunk.lastLinear)) {
  register_module("trunk", trunk_);
  towers_ = register_module("towers", moduleListOf(towers));
}

ModelOutput CascadeModel::forward(const ModelInputs& inputs) {
  if (inputs.size() != 1)
    throw std::invalid_argument("cascade: the stages of a funnel need one batch for every task");
  ModelOutput out;
  const torch::Tensor z = trunk_->forward(inputs.front());
  torch::Tensor logP;
  for (std::size_t t = 0; t < taskCount(); ++t) {
    const torch::Tensor a = towers_->ptr<nn::SequentialImpl>(t)->forward(z);
    if (t == 0) {
      logP = torch::log_sigmoid(a);
      out.outputs.push_back(a);  // logit(σ(a)) = a, without the round trip
    } else {
      logP = logP + torch::log_sigmoid(a);
      out.outputs.push_back(logitOfLog(logP));
    }
  }
  return out;
}

std::vector<torch::Tensor> CascadeModel::stageProbabilities(const torch::Tensor& input) {
  const torch::Tensor z = trunk_->forward(input);
  std::vector<torch::Tensor> out;
  for (const auto& tower : *towers_)
    out.push_back(torch::sigmoid(tower->as<nn::Sequential>()->forward(z)));
  return out;
}

std::vector<torch::Tensor> CascadeModel::sharedParameters() const {
  std::vector<torch::Tensor> out = trunk_->parameters();
  for (std::size_t s = 0; s + 1 < taskCount(); ++s) {
    for (const auto& p : towers_->ptr(s)->parameters()) out.push_back(p);
  }
  return out;
}

std::vector<torch::Tensor> CascadeModel::taskParameters(std::size_t task) const {
  if (task + 1 < taskCount()) return {};
  return towers_->ptr(task)->parameters();
}

std::vector<torch::Tensor> CascadeModel::lastSharedLayer() const {
  return weightsAndBiases(lastShared_);
}

ArchitectureInfo cascadeArchitecture() {
  ArchitectureInfo row;
  row.name = "cascade";
  row.description =
      "funnel stages: task t predicts Π_{s≤t} σ(a_s), one tower a_s per stage (ESMM: ctr, ctcvr)";
  row.reference = "Ma et al., SIGIR 2018 (ESMM)";
  row.plan = [](const ConfigNode& model, const ModelContext& context) {
    if (context.tasks.size() < 2)
      model.fail("architecture", "a cascade chains at least two tasks, in funnel order");
    for (const auto& task : context.tasks) {
      if (task.kind != TaskKind::kBinary) {
        model.fail("architecture",
                   fmt::format("a cascade's tasks are funnel stages, each binary; task '{}' is {}",
                               task.name, toString(task.kind)));
      }
    }
    const TrunkPlan trunk = planTrunk(model.child("trunk"), context);
    const HeadPlan head = planHead(model.child("head"), context);
    ModelPlan plan;
    plan.provides = {/*features=*/false, /*lastSharedLayer=*/trunk.hasLastLinear,
                     /*sharedParameters=*/true};
    plan.size = trunk.size;
    addHeadSize(plan.size, head, trunk.size.width);
    const std::vector<TaskSpec> tasks = context.tasks;
    plan.build = [trunk, head, tasks](const std::vector<int64_t>& inputShape) {
      TrunkParts parts = trunk.build(inputShape);
      const auto towers = buildHeads(head, parts.width, tasks);
      return std::make_shared<CascadeModel>(std::move(parts), towers);
    };
    return plan;
  };
  return row;
}

}  // namespace fulcrum
