#include "models/ltb.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>

namespace fulcrum {

namespace nn = torch::nn;

LtbModel::LtbModel(std::vector<TrunkParts> columns, bool sampleInEvaluation, int64_t warmupEpochs,
                   const std::vector<nn::Sequential>& heads)
    : stageEnds_(stageEndsOf(columns.front())),
      sampleInEvaluation_(sampleInEvaluation),
      warmupEpochs_(warmupEpochs) {
  if (stageEnds_.size() < 2)
    throw std::logic_error("ltb branches between trunk stages: it needs at least two");
  const auto tasks = static_cast<int64_t>(columns.size());
  const auto branchings = static_cast<int64_t>(stageEnds_.size()) - 1;
  // The shared stages end where the last stage begins.
  lastShared_ = lastLinearsBefore(columns, lastStageBegin());
  columns_ = register_module("columns", moduleListOf(columns));
  alpha_ = register_parameter("alpha", torch::ones({branchings, tasks, tasks}));
  heads_ = register_module("heads", moduleListOf(heads));
}

void LtbModel::beginEpoch(int64_t epoch, int64_t epochs) {
  epoch_ = epoch;
  epochs_ = epochs;
}

bool LtbModel::warmingUp() const {
  if (epochs_ == 0) return true;
  return warmupEpochs_ < 0 ? static_cast<double>(epoch_) < static_cast<double>(epochs_) / 100.0
                           : epoch_ < warmupEpochs_;
}

double LtbModel::temperature() const {
  return (static_cast<double>(epochs_) / 20.0) / std::sqrt(static_cast<double>(epoch_) + 1.0);
}

torch::Tensor LtbModel::branching() {
  if (warmingUp()) return torch::ones_like(alpha_);
  if (!is_training() && !sampleInEvaluation_)
    return torch::one_hot(alpha_.argmax(-1), alpha_.size(-1)).to(alpha_.dtype());
  return nn::functional::gumbel_softmax(
      alpha_, nn::functional::GumbelSoftmaxFuncOptions().tau(temperature()).hard(true).dim(-1));
}

ModelOutput LtbModel::forward(const ModelInputs& inputs) {
  const std::size_t tasks = taskCount();
  inputOf(inputs, 0, tasks);  // one batch, or one per task
  const torch::Tensor a = branching();
  // Every column on `input`; the last stage and head of the tasks in `wanted` only.
  ModelOutput out;
  out.outputs.resize(tasks);
  out.features.resize(tasks);
  auto run = [&](const torch::Tensor& input, const std::vector<std::size_t>& wanted) {
    std::vector<torch::Tensor> h(tasks, input);
    std::size_t begin = 0;
    for (std::size_t l = 0; l < stageEnds_.size(); ++l) {
      const bool last = l + 1 == stageEnds_.size();
      if (l > 0) {
        // in_{t,l} = Σ_j a_l[t][j] out_{j,l−1} (every column the same shape).
        const torch::Tensor stacked = torch::stack(h, 0);  // T × B × ...
        const torch::Tensor mixed =
            torch::tensordot(a[static_cast<int64_t>(l) - 1].to(stacked.dtype()), stacked, {1}, {0});
        for (std::size_t t = 0; t < tasks; ++t) h[t] = mixed[static_cast<int64_t>(t)];
        if (last)
          for (const std::size_t t : wanted) out.features[t] = h[t];
      }
      for (std::size_t t = 0; t < tasks; ++t) {
        if (last && std::find(wanted.begin(), wanted.end(), t) == wanted.end()) continue;
        auto& column = *columns_->ptr<nn::SequentialImpl>(t);
        for (std::size_t m = begin; m <= stageEnds_[l]; ++m)
          h[t] = (column.begin() + static_cast<long>(m))->forward(h[t]);
      }
      begin = stageEnds_[l] + 1;
    }
    for (const std::size_t t : wanted)
      out.outputs[t] = heads_->ptr<nn::SequentialImpl>(t)->forward(h[t]);
  };
  if (inputs.size() == 1) {
    std::vector<std::size_t> all(tasks);
    for (std::size_t t = 0; t < tasks; ++t) all[t] = t;
    run(inputs[0], all);
  } else {
    // Per-task batches: every column runs on task t's batch for task t's output.
    for (std::size_t t = 0; t < tasks; ++t) run(inputs[t], {t});
  }
  return out;
}

std::vector<torch::Tensor> LtbModel::sharedParameters() const {
  std::vector<torch::Tensor> out;
  for (std::size_t t = 0; t < columns_->size(); ++t) {
    const auto& column = *columns_->ptr<nn::SequentialImpl>(t);
    for (std::size_t m = 0; m < lastStageBegin(); ++m)
      for (const auto& p : column.ptr(m)->parameters()) out.push_back(p);
  }
  out.push_back(alpha_);
  return out;
}

std::vector<torch::Tensor> LtbModel::taskParameters(std::size_t task) const {
  std::vector<torch::Tensor> out;
  const auto& column = *columns_->ptr<nn::SequentialImpl>(task);
  for (std::size_t m = lastStageBegin(); m < column.size(); ++m)
    for (const auto& p : column.ptr(m)->parameters()) out.push_back(p);
  for (const auto& p : heads_->ptr(task)->parameters()) out.push_back(p);
  return out;
}

std::vector<torch::Tensor> LtbModel::lastSharedLayer() const {
  return weightsAndBiases(lastShared_);
}

std::vector<std::string> LtbModel::featureNames() const {
  return numberedNames("column", columns_->size());
}

ArchitectureInfo ltbArchitecture() {
  ArchitectureInfo row;
  row.name = "ltb";
  row.description =
      "one column per task, each stage's parent column chosen by Gumbel-softmax (learns a tree)";
  row.reference = "Guo, Lee, Ulbricht, ICML 2020";
  row.plan = [](const ConfigNode& model, const ModelContext& context) {
    const bool sample = model.getString("evaluation", "sample", {"sample", "argmax"}) == "sample";
    const int64_t warmup =
        model.has("warmup_epochs") ? model.getInt("warmup_epochs", 0, 0, 1'000'000) : -1;
    const ConfigNode trunkNode = model.child("trunk");
    const TrunkPlan trunk = planTrunk(trunkNode, context);
    const HeadPlan head = planHead(model.child("head"), context);
    const std::size_t tasks = context.tasks.size();
    auto refuse = [&](int64_t stages) {
      trunkNode.fail("kind",
                     fmt::format("ltb chooses each column's parent between trunk stages, so it "
                                 "needs a trunk of at least 2 stages; this '{}' trunk has {} "
                                 "(an mlp has one stage per width in `hidden`)",
                                 trunk.kind, stages));
    };
    if (trunk.size.stages == 1) refuse(1);
    ModelPlan plan;
    const auto t = static_cast<double>(tasks);
    const double stages = static_cast<double>(std::max<int64_t>(trunk.size.stages, 2));
    plan.size.parameters = t * trunk.size.parameters + (stages - 1) * t * t;
    plan.size.activationWidth = t * trunk.size.activationWidth;
    addHeadSize(plan.size, head, trunk.size.width);
    // Whether the shared stages hold a Linear: the built-in mlp's every stage
    // does; any other trunk is built once to look (when the data's shape is known).
    plan.provides.lastSharedLayer = trunk.kind == "mlp";
    if (!context.inputShape.empty()) {
      std::vector<TrunkParts> one = {trunk.build(context.inputShape)};
      const auto ends = stageEndsOf(one.front());
      if (ends.size() < 2) refuse(static_cast<int64_t>(ends.size()));
      plan.provides.lastSharedLayer = !lastLinearsBefore(one, ends[ends.size() - 2] + 1).empty();
    }
    const std::vector<TaskSpec> taskList = context.tasks;
    plan.build = [=](const std::vector<int64_t>& inputShape) {
      std::vector<TrunkParts> columns;
      for (std::size_t c = 0; c < taskList.size(); ++c) columns.push_back(trunk.build(inputShape));
      const auto heads = buildHeads(head, columns.front().width, taskList);
      return std::make_shared<LtbModel>(std::move(columns), sample, warmup, heads);
    };
    return plan;
  };
  return row;
}

}  // namespace fulcrum
