#include "models/mtan.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <stdexcept>

namespace fulcrum {

namespace nn = torch::nn;

namespace {

bool isImage(const std::vector<int64_t>& shape) { return shape.size() == 3; }

/// What the stages' shapes lack for mtan, or "" (each stage's output an
/// image C × H × W or flat D; no flat stage before an image one).
std::string unsupportedStages(const std::vector<std::vector<int64_t>>& shapes) {
  for (std::size_t l = 0; l < shapes.size(); ++l) {
    if (shapes[l].size() != 1 && !isImage(shapes[l])) {
      return fmt::format(
          "mtan attends over stages whose outputs are C×H×W images or flat vectors; stage {} of "
          "this trunk gives [{}]",
          l + 1, fmt::join(shapes[l], ", "));
    }
    if (l > 0 && isImage(shapes[l]) && !isImage(shapes[l - 1])) {
      return fmt::format("mtan cannot bring the flat stage {} to the image stage {} after it", l,
                         l + 1);
    }
  }
  return "";
}

/// att_{t,l}: `in` channels (or features) to a mask of the stage's shape.
nn::Sequential attentionModule(const std::vector<int64_t>& stage, int64_t in) {
  const int64_t c = stage[0];
  nn::Sequential att;
  if (isImage(stage)) {
    att->push_back(nn::Conv2d(nn::Conv2dOptions(in, c, 1)));
    att->push_back(nn::BatchNorm2d(c));
    att->push_back(nn::ReLU());
    att->push_back(nn::Conv2d(nn::Conv2dOptions(c, c, 1)));
    att->push_back(nn::BatchNorm2d(c));
  } else {
    att->push_back(nn::Linear(in, c));
    att->push_back(nn::ReLU());
    att->push_back(nn::Linear(c, c));
  }
  att->push_back(nn::Sigmoid());
  return att;
}

/// f_l: stage l's attended features to stage l+1's shape.
nn::Sequential bridgeModule(const std::vector<int64_t>& from, const std::vector<int64_t>& to) {
  nn::Sequential bridge;
  if (isImage(to)) {
    bridge->push_back(nn::Conv2d(nn::Conv2dOptions(from[0], to[0], 1)));
    bridge->push_back(nn::BatchNorm2d(to[0]));
    bridge->push_back(nn::ReLU());
    if (from[1] != to[1] || from[2] != to[2])
      bridge->push_back(nn::AdaptiveMaxPool2d(nn::AdaptiveMaxPool2dOptions({to[1], to[2]})));
  } else {
    bridge->push_back(nn::Flatten());
    bridge->push_back(nn::Linear(exampleElements(from), to[0]));
    bridge->push_back(nn::ReLU());
  }
  return bridge;
}

}  // namespace

std::vector<std::vector<int64_t>> stageShapes(TrunkParts& parts,
                                              const std::vector<int64_t>& inputShape) {
  torch::NoGradGuard noGrad;
  const bool training = parts.layers->is_training();
  parts.layers->eval();  // BatchNorm on one example
  std::vector<int64_t> shape = {1};
  shape.insert(shape.end(), inputShape.begin(), inputShape.end());
  torch::Tensor h = torch::zeros(shape);
  std::vector<std::vector<int64_t>> shapes;
  std::size_t m = 0;
  for (const std::size_t end : stageEndsOf(parts)) {
    for (; m <= end; ++m) h = (parts.layers->begin() + static_cast<long>(m))->forward(h);
    shapes.emplace_back(h.sizes().begin() + 1, h.sizes().end());
  }
  parts.layers->train(training);
  return shapes;
}

MtanModel::MtanModel(TrunkParts trunk, const std::vector<std::vector<int64_t>>& shapes,
                     const std::vector<nn::Sequential>& heads)
    : trunk_(trunk.layers), lastShared_(trunk.lastLinear), stageEnds_(stageEndsOf(trunk)) {
  const std::string problem = unsupportedStages(shapes);
  if (!problem.empty()) throw std::logic_error(problem);
  if (shapes.size() != stageEnds_.size())
    throw std::logic_error("mtan: one shape per trunk stage expected");
  register_module("trunk", trunk_);
  bridges_ = register_module("bridges", nn::ModuleList());
  for (std::size_t l = 0; l + 1 < shapes.size(); ++l)
    bridges_->push_back(bridgeModule(shapes[l], shapes[l + 1]));
  attention_ = register_module("attention", nn::ModuleList());
  for (std::size_t t = 0; t < heads.size(); ++t) {
    nn::ModuleList own;
    for (std::size_t l = 0; l < shapes.size(); ++l)
      own->push_back(attentionModule(shapes[l], (l == 0 ? 1 : 2) * shapes[l][0]));
    attention_->push_back(own);
  }
  heads_ = register_module("heads", moduleListOf(heads));
}

ModelOutput MtanModel::run(const ModelInputs& inputs, std::size_t maskTask,
                           std::vector<torch::Tensor>* masks) {
  const std::size_t tasks = taskCount();
  inputOf(inputs, 0, tasks);  // one batch, or one per task
  // The shared stages' outputs s_l, once per input batch.
  std::vector<std::vector<torch::Tensor>> stages;
  for (const auto& input : inputs) {
    std::vector<torch::Tensor> s;
    torch::Tensor h = input;
    std::size_t m = 0;
    for (const std::size_t end : stageEnds_) {
      for (; m <= end; ++m) h = (trunk_->begin() + static_cast<long>(m))->forward(h);
      s.push_back(h);
    }
    stages.push_back(std::move(s));
  }
  ModelOutput out;
  for (std::size_t t = 0; t < tasks; ++t) {
    const std::vector<torch::Tensor>& s = stages[inputs.size() == 1 ? 0 : t];
    const auto& own = *attention_->ptr<nn::ModuleListImpl>(t);
    torch::Tensor attended;
    for (std::size_t l = 0; l < s.size(); ++l) {
      const torch::Tensor in =
          l == 0
              ? s[0]
              : torch::cat({s[l], bridges_->ptr<nn::SequentialImpl>(l - 1)->forward(attended)}, 1);
      const torch::Tensor mask = own.ptr<nn::SequentialImpl>(l)->forward(in);
      if (masks != nullptr && t == maskTask) masks->push_back(mask);
      attended = mask * s[l];
    }
    out.outputs.push_back(heads_->ptr<nn::SequentialImpl>(t)->forward(attended));
  }
  return out;
}

ModelOutput MtanModel::forward(const ModelInputs& inputs) { return run(inputs, 0, nullptr); }

std::vector<torch::Tensor> MtanModel::masks(std::size_t task, const torch::Tensor& input) {
  std::vector<torch::Tensor> out;
  run({input}, task, &out);
  return out;
}

std::vector<torch::Tensor> MtanModel::sharedParameters() const {
  std::vector<torch::Tensor> out = trunk_->parameters();
  for (const auto& p : bridges_->parameters()) out.push_back(p);
  return out;
}

std::vector<torch::Tensor> MtanModel::taskParameters(std::size_t task) const {
  std::vector<torch::Tensor> out = attention_->ptr(task)->parameters();
  for (const auto& p : heads_->ptr(task)->parameters()) out.push_back(p);
  return out;
}

std::vector<torch::Tensor> MtanModel::lastSharedLayer() const {
  return weightsAndBiases(lastShared_);
}

ArchitectureInfo mtanArchitecture() {
  ArchitectureInfo row;
  row.name = "mtan";
  row.description = "shared trunk, a soft attention module per task at each stage";
  row.reference = "Liu, Johns, Davison, CVPR 2019";
  row.plan = [](const ConfigNode& model, const ModelContext& context) {
    const ConfigNode trunkNode = model.child("trunk");
    const TrunkPlan trunk = planTrunk(trunkNode, context);
    const HeadPlan head = planHead(model.child("head"), context);
    ModelPlan plan;
    plan.provides = {/*features=*/false, /*lastSharedLayer=*/trunk.hasLastLinear,
                     /*sharedParameters=*/true};
    const std::vector<TaskSpec> tasks = context.tasks;
    plan.build = [trunk, head, tasks](const std::vector<int64_t>& inputShape) {
      TrunkParts parts = trunk.build(inputShape);
      const auto shapes = stageShapes(parts, inputShape);
      const auto heads = buildHeads(head, parts.width, tasks);
      return std::make_shared<MtanModel>(std::move(parts), shapes, heads);
    };
    plan.size = trunk.size;
    addHeadSize(plan.size, head, trunk.size.width);
    if (!context.inputShape.empty()) {
      // The stages' shapes need a forward pass: through a model built for
      // it, after checking that mtan can attend over them.
      TrunkParts parts = trunk.build(context.inputShape);
      const auto shapes = stageShapes(parts, context.inputShape);
      const std::string problem = unsupportedStages(shapes);
      if (!problem.empty()) trunkNode.fail("kind", problem);
      const int64_t width = parts.width;
      const MtanModel built(std::move(parts), shapes, buildHeads(head, width, tasks));
      plan.size.parameters = 0;
      for (const auto& p : built.parameters())
        plan.size.parameters += static_cast<double>(p.numel());
      // Each task's masks and attended features: about three stage outputs per stage.
      double stageElements = 0;
      for (const auto& shape : shapes) stageElements += static_cast<double>(exampleElements(shape));
      plan.size.activationWidth += 3.0 * static_cast<double>(tasks.size()) * stageElements;
    }
    return plan;
  };
  return row;
}

}  // namespace fulcrum
