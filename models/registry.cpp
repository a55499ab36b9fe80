#include "models/registry.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <stdexcept>

#include "framework/extension_registry.h"
#include "models/cascade.h"
#include "models/cgc.h"
#include "models/cross_stitch.h"
#include "models/dselect_k.h"
#include "models/heads.h"
#include "models/hps.h"
#include "models/lenet.h"
#include "models/ltb.h"
#include "models/mlp.h"
#include "models/mmoe.h"
#include "models/mtan.h"
#include "models/ple.h"
#include "models/segnet.h"
#include "models/soft_sharing.h"

namespace fulcrum {

namespace {

std::vector<ArchitectureInfo>& architectures() {
  static std::vector<ArchitectureInfo> table = {
      hardSharingArchitecture(), mmoeArchitecture(),     cgcArchitecture(),
      pleArchitecture(),         dselectKArchitecture(), crossStitchArchitecture(),
      softSharingArchitecture(), cascadeArchitecture(),  mtanArchitecture(),
      ltbArchitecture()};
  return table;
}

std::vector<TrunkInfo>& trunks() {
  static std::vector<TrunkInfo> table = {mlpTrunk(), lenetTrunk(), segnetTrunk()};
  return table;
}

std::vector<HeadInfo>& heads() {
  static std::vector<HeadInfo> table = {linearHead(), mlpHead(), convHead()};
  return table;
}

template <typename Row>
const Row* find(const std::vector<Row>& table, const std::string& name) {
  for (const auto& row : table) {
    if (row.name == name) return &row;
  }
  return nullptr;
}

template <typename Row>
std::vector<std::string> namesOf(const std::vector<Row>& table) {
  std::vector<std::string> names;
  for (const auto& row : table) names.push_back(row.name);
  return names;
}

template <typename Row>
void addRow(std::vector<Row>& table, Row info, const char* what, bool hooksPresent) {
  if (!isPlainName(info.name))
    throw std::invalid_argument(
        fmt::format("register{}: '{}' is not a plain name", what, info.name));
  if (find(table, info.name) != nullptr)
    throw std::invalid_argument(fmt::format("register{}: '{}' exists", what, info.name));
  if (!hooksPresent)
    throw std::invalid_argument(
        fmt::format("register{}: '{}' lacks a required hook", what, info.name));
  table.push_back(std::move(info));
}

ModelSize sum(ModelSize a, const ModelSize& b) {
  a.parameters += b.parameters;
  a.activationWidth += b.activationWidth;
  return a;
}

ModelPlan readPlan(const ExperimentSpec& spec) {
  ModelContext context;
  context.tasks = spec.tasks;
  context.inputShape = knownInputShape(spec.data);
  context.dataKind = spec.data.kind;
  const ConfigNode& model = spec.model;
  const std::string name = model.getString("architecture", "hps", namesOf(architectures()));
  ModelPlan plan = find(architectures(), name)->plan(model, context);
  plan.architecture = name;
  model.finish();
  for (const auto& task : spec.tasks) {
    const TaskKindInfo& kind = taskKindInfo(task.kind);
    if (kind.dense == plan.denseOutputs) continue;
    const std::string where = model.has("head") ? "model.head.kind" : "model";
    throw errorAtKey(
        spec, where,
        kind.dense
            ? fmt::format("task '{}' is a {} task (per pixel): it needs a spatial trunk and head "
                          "(architecture: hps, trunk: {{kind: segnet}}, head: {{kind: conv}})",
                          task.name, kind.name)
            : fmt::format("task '{}' is a {} task (one prediction per example), but the model "
                          "predicts per pixel; dense heads serve segmentation, depth and "
                          "normals tasks",
                          task.name, kind.name));
  }
  return plan;
}

/// Fails at `kind` of `node` if a spatial row is chosen where the architecture takes none.
void refuseSpatial(const ConfigNode& node, const std::string& what, const std::string& kind,
                   const ModelContext& context) {
  if (context.spatial) return;
  node.fail("kind", fmt::format("{} '{}' works on feature maps, for dense tasks; only "
                                "architecture hps takes it",
                                what, kind));
}

}  // namespace

void registerArchitecture(ArchitectureInfo info) {
  const bool hooks = static_cast<bool>(info.plan);
  addRow(architectures(), std::move(info), "Architecture", hooks);
}

void registerTrunk(TrunkInfo info) {
  const bool hooks = static_cast<bool>(info.build);
  addRow(trunks(), std::move(info), "Trunk", hooks);
}

void registerHead(HeadInfo info) {
  const bool hooks = static_cast<bool>(info.build);
  addRow(heads(), std::move(info), "Head", hooks);
}

const std::vector<ArchitectureInfo>& architectureTable() { return architectures(); }
const std::vector<TrunkInfo>& trunkTable() { return trunks(); }
const std::vector<HeadInfo>& headTable() { return heads(); }

std::vector<torch::nn::Linear> lastLinearsOf(const std::vector<TrunkParts>& parts) {
  std::vector<torch::nn::Linear> layers;
  for (const auto& part : parts) {
    if (part.lastLinear.is_empty()) return {};
    layers.push_back(part.lastLinear);
  }
  return layers;
}

std::vector<torch::nn::Linear> lastLinearsBefore(const std::vector<TrunkParts>& parts,
                                                 std::size_t end) {
  std::vector<torch::nn::Linear> out;
  for (const auto& part : parts) {
    torch::nn::Linear last{nullptr};
    for (std::size_t m = 0; m < end && m < part.layers->size(); ++m) {
      if (auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(part.layers->ptr(m)))
        last = torch::nn::Linear(linear);
    }
    if (last.is_empty()) return {};
    out.push_back(last);
  }
  return out;
}

std::vector<torch::Tensor> weightsAndBiases(const std::vector<torch::nn::Linear>& layers) {
  std::vector<torch::Tensor> out;
  for (const auto& layer : layers) {
    out.push_back(layer->weight);
    out.push_back(layer->bias);
  }
  return out;
}

std::vector<torch::Tensor> weightsAndBiases(const torch::nn::Linear& layer) {
  if (layer.is_empty()) return {};
  return weightsAndBiases(std::vector<torch::nn::Linear>{layer});
}

std::vector<std::size_t> stageEndsOf(const TrunkParts& parts) {
  std::vector<std::size_t> ends = parts.stageEnds;
  const std::size_t last = parts.layers->size() - 1;
  if (ends.empty() || ends.back() != last) ends.push_back(last);
  return ends;
}

torch::nn::ModuleList moduleListOf(const std::vector<TrunkParts>& parts) {
  torch::nn::ModuleList list;
  for (const auto& part : parts) list->push_back(part.layers);
  return list;
}

torch::nn::ModuleList moduleListOf(const std::vector<torch::nn::Sequential>& modules) {
  torch::nn::ModuleList list;
  for (const auto& module : modules) list->push_back(module);
  return list;
}

std::vector<torch::nn::Sequential> buildHeads(const HeadPlan& head, int64_t width,
                                              const std::vector<TaskSpec>& tasks) {
  std::vector<torch::nn::Sequential> out;
  for (const auto& task : tasks) out.push_back(head.build(width, task));
  return out;
}

void addHeadSize(ModelSize& size, const HeadPlan& head, int64_t width) {
  size = sum(size, head.size(width));
}

bool readPerTaskFeatures(const ConfigNode& model) {
  return model.getString("features", "experts", {"experts", "per_task"}) == "per_task";
}

std::vector<std::string> numberedNames(const std::string& prefix, std::size_t count) {
  std::vector<std::string> names;
  for (std::size_t k = 0; k < count; ++k) names.push_back(prefix + std::to_string(k));
  return names;
}

bool hasDenseTask(const std::vector<TaskSpec>& tasks) {
  for (const auto& task : tasks) {
    if (taskKindInfo(task.kind).dense) return true;
  }
  return false;
}

int64_t exampleElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

TrunkPlan planTrunk(const ConfigNode& trunk, const ModelContext& context) {
  TrunkPlan plan;
  const char* fallback = hasDenseTask(context.tasks)           ? "segnet"
                         : context.dataKind == "multi_fashion" ? "lenet"
                                                               : "mlp";
  plan.kind = trunk.getString("kind", fallback, namesOf(trunks()));
  const TrunkInfo& row = *find(trunks(), plan.kind);
  if (row.spatial) refuseSpatial(trunk, "trunk", plan.kind, context);
  if (row.check) row.check(trunk, context.inputShape);
  trunk.finish();
  plan.hasLastLinear = row.hasLastLinear;
  plan.spatial = row.spatial;
  const std::string kind = plan.kind;
  plan.sizeFor = [trunk, kind](const std::vector<int64_t>& inputShape) {
    const TrunkInfo& info = *find(trunks(), kind);
    return info.size ? info.size(trunk, inputShape) : ModelSize{};
  };
  plan.size = plan.sizeFor(context.inputShape);
  plan.build = [trunk, kind](const std::vector<int64_t>& inputShape) {
    const TrunkInfo& info = *find(trunks(), kind);
    if (info.check) info.check(trunk, inputShape);
    TrunkParts parts = info.build(trunk, inputShape);
    if (parts.layers.is_empty() || parts.width < 1 ||
        (info.hasLastLinear && parts.lastLinear.is_empty() && parts.lastLayer.empty())) {
      throw std::logic_error(fmt::format(
          "trunk '{}': the builder must return layers and a width >= 1{}", kind,
          info.hasLastLinear ? ", and their last linear layer (or declare hasLastLinear = false)"
                             : ""));
    }
    return parts;
  };
  return plan;
}

HeadPlan planHead(const ConfigNode& head, const ModelContext& context) {
  HeadPlan plan;
  plan.kind =
      head.getString("kind", hasDenseTask(context.tasks) ? "conv" : "linear", namesOf(heads()));
  const HeadInfo& row = *find(heads(), plan.kind);
  if (row.spatial) refuseSpatial(head, "head", plan.kind, context);
  if (row.check) row.check(head);
  head.finish();
  plan.spatial = row.spatial;
  const std::string kind = plan.kind;
  const std::vector<TaskSpec> tasks = context.tasks;
  plan.size = [head, kind, tasks](int64_t width) {
    const HeadInfo& info = *find(heads(), kind);
    ModelSize total;
    if (!info.size) return total;
    for (const auto& task : tasks) total = sum(total, info.size(head, width, task));
    return total;
  };
  plan.build = [head, kind](int64_t width, const TaskSpec& task) {
    return find(heads(), kind)->build(head, width, task);
  };
  return plan;
}

ModelPlan planModel(const ExperimentSpec& spec) {
  ModelPlan plan = readPlan(spec);
  checkMemory(spec, plan.size);
  return plan;
}

std::shared_ptr<MultiTaskModel> makeModel(const ExperimentSpec& spec,
                                          const std::vector<int64_t>& inputShape) {
  const ModelPlan plan = readPlan(spec);
  torch::manual_seed(spec.seed);
  std::shared_ptr<MultiTaskModel> model = plan.build(inputShape);
  if (model->taskCount() != spec.tasks.size()) {
    throw std::logic_error(fmt::format("architecture built {} task outputs for {} tasks",
                                       model->taskCount(), spec.tasks.size()));
  }
  return model;
}

void checkStrategyFits(const ExperimentSpec& spec, const Strategy& strategy,
                       const ModelPlan& plan) {
  std::string missing;
  switch (strategy.needs()) {
    case GradientNeed::kLosses:
      return;
    case GradientNeed::kRepresentation:
      if (!plan.provides.features)
        missing =
            "features (tensors every task's loss passes through) for its representation gradients";
      break;
    case GradientNeed::kLastSharedLayer:
      if (!plan.provides.lastSharedLayer) missing = "a last shared layer";
      break;
    case GradientNeed::kSharedParameters:
      if (!plan.provides.sharedParameters) missing = "shared parameters";
      break;
  }
  if (missing.empty()) return;
  throw errorAtKey(spec, "strategy.name",
                   fmt::format("strategy '{}' needs {}, which architecture '{}' does not have; "
                               "use another architecture, or a strategy option that asks for "
                               "what it has (`fulcrum list {}`)",
                               spec.strategyName, missing, plan.architecture, spec.strategyName));
}

}  // namespace fulcrum
