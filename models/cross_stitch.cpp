#include "models/cross_stitch.h"

#include <fmt/format.h>
#include <torch/torch.h>

namespace fulcrum {

namespace nn = torch::nn;

CrossStitchModel::CrossStitchModel(std::vector<TrunkParts> columns, double same, double other,
                                   const std::vector<nn::Sequential>& heads) {
  const auto tasks = static_cast<int64_t>(columns.size());
  stageEnds_ = stageEndsOf(columns.front());
  lastLayers_ = lastLinearsOf(columns);
  columns_ = register_module("columns", moduleListOf(columns));
  const auto stages = static_cast<int64_t>(stageEnds_.size());
  alpha_ = register_parameter(
      "alpha", torch::full({stages, tasks, tasks}, other) +
                   (same - other) * torch::eye(tasks).unsqueeze(0).expand({stages, tasks, tasks}));
  heads_ = register_module("heads", moduleListOf(heads));
}

ModelOutput CrossStitchModel::forward(const ModelInputs& inputs) {
  const std::size_t tasks = taskCount();
  std::vector<torch::Tensor> h(tasks);
  for (std::size_t t = 0; t < tasks; ++t) h[t] = inputOf(inputs, t, tasks);
  ModelOutput out;
  std::size_t begin = 0;
  for (std::size_t l = 0; l < stageEnds_.size(); ++l) {
    for (std::size_t t = 0; t < tasks; ++t) {
      auto& column = *columns_->ptr<nn::SequentialImpl>(t);
      for (std::size_t m = begin; m <= stageEnds_[l]; ++m)
        h[t] = (column.begin() + static_cast<long>(m))->forward(h[t]);
    }
    begin = stageEnds_[l] + 1;
    // Mixing the columns: h̃_t = Σ_j α_l[t][j] h_j (every column the same shape).
    const torch::Tensor stacked = torch::stack(h, 0);  // T × B × ...
    const torch::Tensor mixed =
        torch::tensordot(alpha_[static_cast<int64_t>(l)].to(stacked.dtype()), stacked, {1}, {0});
    for (std::size_t t = 0; t < tasks; ++t) h[t] = mixed[static_cast<int64_t>(t)];
  }
  // After the last mixing: what every column and every α reach the heads through.
  out.features = h;
  for (std::size_t t = 0; t < tasks; ++t)
    out.outputs.push_back(heads_->ptr<nn::SequentialImpl>(t)->forward(h[t]));
  return out;
}

std::vector<torch::Tensor> CrossStitchModel::sharedParameters() const {
  std::vector<torch::Tensor> out = columns_->parameters();
  out.push_back(alpha_);
  return out;
}

std::vector<torch::Tensor> CrossStitchModel::taskParameters(std::size_t task) const {
  return heads_->ptr(task)->parameters();
}

std::vector<torch::Tensor> CrossStitchModel::lastSharedLayer() const {
  return weightsAndBiases(lastLayers_);
}

std::vector<std::string> CrossStitchModel::featureNames() const {
  return numberedNames("column", columns_->size());
}

ArchitectureInfo crossStitchArchitecture() {
  ArchitectureInfo row;
  row.name = "cross_stitch";
  row.description = "one column per task, learned mixing of the columns after each stage";
  row.reference = "Misra, Shrivastava, Gupta, Hebert, CVPR 2016";
  row.plan = [](const ConfigNode& model, const ModelContext& context) {
    const double same = model.getDouble("init_same", 0.9, -1e3, 1e3);
    const double other = model.getDouble("init_other", 0.1, -1e3, 1e3);
    const TrunkPlan trunk = planTrunk(model.child("trunk"), context);
    const HeadPlan head = planHead(model.child("head"), context);
    const auto tasks = static_cast<double>(context.tasks.size());
    ModelPlan plan;
    plan.provides.lastSharedLayer = trunk.hasLastLinear;
    // T columns and α, stages × T × T (one stage when the trunk does not say).
    plan.size.parameters =
        tasks * trunk.size.parameters +
        static_cast<double>(std::max<int64_t>(trunk.size.stages, 1)) * tasks * tasks;
    plan.size.activationWidth = tasks * trunk.size.activationWidth;
    addHeadSize(plan.size, head, trunk.size.width);
    const std::vector<TaskSpec> taskList = context.tasks;
    plan.build = [=](const std::vector<int64_t>& inputShape) {
      std::vector<TrunkParts> columns;
      for (std::size_t t = 0; t < taskList.size(); ++t) columns.push_back(trunk.build(inputShape));
      const auto heads = buildHeads(head, columns.front().width, taskList);
      return std::make_shared<CrossStitchModel>(std::move(columns), same, other, heads);
    };
    return plan;
  };
  return row;
}

}  // namespace fulcrum
