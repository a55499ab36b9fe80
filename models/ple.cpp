#include "models/ple.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <stdexcept>

namespace fulcrum {

namespace nn = torch::nn;

namespace {

std::vector<torch::Tensor> run(nn::ModuleListImpl& experts, const torch::Tensor& input) {
  std::vector<torch::Tensor> out;
  for (const auto& expert : experts)
    out.push_back(expert->as<nn::SequentialImpl>()->forward(input));
  return out;
}

/// The gate's softmax mixture of `experts` (each B × D) on `input`.
torch::Tensor mix(nn::LinearImpl& gate, const torch::Tensor& input,
                  const std::vector<torch::Tensor>& experts) {
  const torch::Tensor weights = torch::softmax(gate.forward(input.flatten(1)), 1);
  return torch::bmm(weights.unsqueeze(1), torch::stack(experts, 1)).squeeze(1);
}

void append(std::vector<torch::Tensor>& to, const std::vector<torch::Tensor>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

}  // namespace

PleModel::PleModel(std::vector<Level> levels, const std::vector<nn::Sequential>& heads) {
  for (std::size_t l = 0; l < levels.size(); ++l) {
    Level& level = levels[l];
    LevelModules modules;
    modules.shared = register_module(fmt::format("level{}_shared", l), moduleListOf(level.shared));
    modules.own = nn::ModuleList();
    for (const auto& own : level.own) modules.own->push_back(moduleListOf(own));
    register_module(fmt::format("level{}_task", l), modules.own);
    modules.taskGates = nn::ModuleList();
    for (const auto& gate : level.taskGates) modules.taskGates->push_back(gate);
    register_module(fmt::format("level{}_task_gates", l), modules.taskGates);
    if (!level.sharedGate.is_empty())
      modules.sharedGate = register_module(fmt::format("level{}_shared_gate", l), level.sharedGate);
    levels_.push_back(modules);
    if (l + 1 == levels.size()) lastLayers_ = lastLinearsOf(level.shared);
  }
  heads_ = register_module("heads", moduleListOf(heads));
}

ModelOutput PleModel::forward(const ModelInputs& inputs) {
  if (inputs.size() != 1)
    throw std::invalid_argument(
        "ple takes one input batch for all tasks (its shared branch reads it)");
  const std::size_t tasks = taskCount();
  torch::Tensor sharedBranch = inputs.front();
  std::vector<torch::Tensor> branches(tasks, inputs.front());
  ModelOutput out;
  for (auto& level : levels_) {
    const bool last = &level == &levels_.back();
    // The task branches entering the last level: features as well (above level 1).
    if (last && levels_.size() > 1) out.features = branches;
    const std::vector<torch::Tensor> shared = run(*level.shared, sharedBranch);
    std::vector<torch::Tensor> everyExpert = shared;
    std::vector<torch::Tensor> next(tasks);
    for (std::size_t t = 0; t < tasks; ++t) {
      std::vector<torch::Tensor> own = run(*level.own->ptr<nn::ModuleListImpl>(t), branches[t]);
      std::vector<torch::Tensor> candidates = shared;
      append(candidates, own);
      next[t] = mix(*level.taskGates->ptr<nn::LinearImpl>(t), branches[t], candidates);
      append(everyExpert, own);
    }
    if (!last)
      sharedBranch = mix(*level.sharedGate, sharedBranch, everyExpert);
    else
      out.features.insert(out.features.begin(), shared.begin(), shared.end());
    branches = std::move(next);
  }
  if (perTaskFeatures_) out.features = branches;
  for (std::size_t t = 0; t < tasks; ++t)
    out.outputs.push_back(heads_->ptr<nn::SequentialImpl>(t)->forward(branches[t]));
  return out;
}

// Below the last level, task t's experts feed the shared gate, and so every
// task; task t's gate at level l feeds its experts at l + 1, shared when
// l + 1 is below the last level too.
std::vector<torch::Tensor> PleModel::sharedParameters() const {
  std::vector<torch::Tensor> out;
  const std::size_t last = levels_.size() - 1;
  for (std::size_t l = 0; l <= last; ++l) {
    const LevelModules& level = levels_[l];
    append(out, level.shared->parameters());
    if (l < last) {
      append(out, level.own->parameters());
      append(out, level.sharedGate->parameters());
    }
    if (l + 1 < last) append(out, level.taskGates->parameters());
  }
  return out;
}

std::vector<torch::Tensor> PleModel::taskParameters(std::size_t task) const {
  std::vector<torch::Tensor> out;
  const std::size_t last = levels_.size() - 1;
  for (std::size_t l = 0; l <= last; ++l) {
    if (l + 1 >= last) append(out, levels_[l].taskGates->ptr(task)->parameters());
  }
  append(out, levels_.back().own->ptr(task)->parameters());
  append(out, heads_->ptr(task)->parameters());
  return out;
}

std::vector<torch::Tensor> PleModel::lastSharedLayer() const {
  return weightsAndBiases(lastLayers_);
}

std::vector<std::string> PleModel::featureNames() const {
  if (perTaskFeatures_) return numberedNames("mixture", taskCount());
  const std::size_t last = levels_.size() - 1;
  std::vector<std::string> names =
      numberedNames(fmt::format("level{}_shared", last), levels_.back().shared->size());
  if (last > 0) {
    for (const auto& name : numberedNames(fmt::format("level{}_input_task", last), taskCount()))
      names.push_back(name);
  }
  return names;
}

ArchitectureInfo pleArchitecture() {
  ArchitectureInfo row;
  row.name = "ple";
  row.description = "progressive layered extraction: levels of shared and task experts, gated";
  row.reference = "Tang, Liu, Zhao, Gong, RecSys 2020";
  row.plan = [](const ConfigNode& model, const ModelContext& context) {
    const int64_t levelCount = model.getInt("levels", 2, 1, 10);
    const int64_t shared = model.getInt("shared_experts", 1, 1, 1000);
    const int64_t own = model.getInt("task_experts", 1, 1, 1000);
    const bool perTaskFeatures = readPerTaskFeatures(model);
    const TrunkPlan trunk = planTrunk(model.child("trunk"), context);
    const HeadPlan head = planHead(model.child("head"), context);
    const auto tasks = static_cast<int64_t>(context.tasks.size());
    ModelPlan plan;
    plan.provides.lastSharedLayer = trunk.hasLastLinear;
    // Level 1 reads the input, later levels the previous level's output (width w).
    ModelSize expert = trunk.size;
    auto in = static_cast<double>(exampleElements(context.inputShape));
    for (int64_t l = 0; l < levelCount; ++l) {
      const auto experts = static_cast<double>(shared + tasks * own);
      plan.size.parameters += experts * expert.parameters + static_cast<double>(tasks) *
                                                                (in + 1.0) *
                                                                static_cast<double>(shared + own);
      if (l + 1 < levelCount) plan.size.parameters += (in + 1.0) * experts;
      plan.size.activationWidth += experts * expert.activationWidth;
      in = static_cast<double>(expert.width);
      expert = trunk.sizeFor({expert.width});
    }
    addHeadSize(plan.size, head, trunk.size.width);
    const std::vector<TaskSpec> taskList = context.tasks;
    plan.build = [=](const std::vector<int64_t>& inputShape) {
      std::vector<PleModel::Level> levels(static_cast<std::size_t>(levelCount));
      std::vector<int64_t> shape = inputShape;
      int64_t width = 0;
      for (int64_t l = 0; l < levelCount; ++l) {
        PleModel::Level& level = levels[static_cast<std::size_t>(l)];
        const int64_t gateIn = exampleElements(shape);
        for (int64_t e = 0; e < shared; ++e) level.shared.push_back(trunk.build(shape));
        level.own.resize(taskList.size());
        for (auto& mine : level.own) {
          for (int64_t e = 0; e < own; ++e) mine.push_back(trunk.build(shape));
        }
        width = level.shared.front().width;
        for (std::size_t t = 0; t < taskList.size(); ++t)
          level.taskGates.push_back(nn::Linear(gateIn, shared + own));
        if (l + 1 < levelCount) level.sharedGate = nn::Linear(gateIn, shared + tasks * own);
        shape = {width};
      }
      const auto heads = buildHeads(head, width, taskList);
      auto built = std::make_shared<PleModel>(std::move(levels), heads);
      built->setPerTaskFeatures(perTaskFeatures);
      return built;
    };
    return plan;
  };
  return row;
}

}  // namespace fulcrum
