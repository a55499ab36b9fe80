#include "models/dselect_k.h"

#include <fmt/format.h>
#include <torch/torch.h>

namespace fulcrum {

namespace nn = torch::nn;

namespace {

int64_t bitsFor(int64_t experts) {
  int64_t bits = 0;
  while ((int64_t{1} << bits) < experts) ++bits;
  return std::max<int64_t>(bits, 1);
}

/// The smooth step S_γ, elementwise.
torch::Tensor smoothStep(const torch::Tensor& u, double gamma) {
  const torch::Tensor cubic =
      -2.0 / (gamma * gamma * gamma) * u.pow(3) + 3.0 / (2.0 * gamma) * u + 0.5;
  return torch::where(u <= -gamma / 2, torch::zeros_like(u),
                      torch::where(u >= gamma / 2, torch::ones_like(u), cubic));
}

}  // namespace

DSelectKModel::DSelectKModel(std::vector<TrunkParts> experts, int64_t inputs, int64_t k,
                             double gamma, double entropyWeight,
                             const std::vector<nn::Sequential>& heads)
    : k_(k), gamma_(gamma), entropyWeight_(entropyWeight) {
  const auto count = static_cast<int64_t>(experts.size());
  bits_ = bitsFor(count);
  powerOfTwo_ = (int64_t{1} << bits_) == count;
  lastLayers_ = lastLinearsOf(experts);
  experts_ = register_module("experts", moduleListOf(experts));
  selectorLogits_ = nn::ModuleList();
  weightLogits_ = nn::ModuleList();
  torch::NoGradGuard noGrad;
  for (std::size_t t = 0; t < heads.size(); ++t) {
    nn::Linear z(inputs, k * bits_), a(inputs, k);
    for (auto& p : z->parameters()) p.uniform_(-gamma / 100, gamma / 100);
    for (auto& p : a->parameters()) p.uniform_(-0.05, 0.05);
    selectorLogits_->push_back(z);
    weightLogits_->push_back(a);
  }
  register_module("selector_logits", selectorLogits_);
  register_module("weight_logits", weightLogits_);
  heads_ = register_module("heads", moduleListOf(heads));
  codes_ = torch::zeros({count, bits_}, torch::kBool);
  for (int64_t e = 0; e < count; ++e) {
    for (int64_t i = 0; i < bits_; ++i) codes_[e][i] = ((e >> (bits_ - 1 - i)) & 1) == 1;
  }
}

torch::Tensor DSelectKModel::selectors(std::size_t task, const torch::Tensor& input) {
  const torch::Tensor z = selectorLogits_->ptr<nn::LinearImpl>(task)->forward(input.flatten(1));
  const torch::Tensor step = smoothStep(z.view({-1, k_, 1, bits_}), gamma_);  // B × k × 1 × b
  return torch::where(codes_.unsqueeze(0).unsqueeze(0), step, 1 - step).prod(3);  // B × k × E
}

torch::Tensor DSelectKModel::expertWeights(std::size_t task, const torch::Tensor& input,
                                           const torch::Tensor& s) {
  const torch::Tensor alpha =
      torch::softmax(weightLogits_->ptr<nn::LinearImpl>(task)->forward(input.flatten(1)), 1);
  return torch::bmm(alpha.unsqueeze(1), s).squeeze(1);  // B × E
}

ModelOutput DSelectKModel::forward(const ModelInputs& inputs) {
  ModelOutput out;
  const std::size_t tasks = taskCount();
  torch::Tensor regularizer = torch::zeros({});
  torch::Tensor stacked;
  for (std::size_t t = 0; t < tasks; ++t) {
    const torch::Tensor& x = inputOf(inputs, t, tasks);
    if (t == 0 || inputs.size() > 1) {
      std::vector<torch::Tensor> experts;
      for (const auto& expert : *experts_)
        experts.push_back(expert->as<nn::SequentialImpl>()->forward(x));
      if (!perTaskFeatures_)
        out.features.insert(out.features.end(), experts.begin(), experts.end());
      stacked = torch::stack(experts, 1);  // B × E × D
    }
    const torch::Tensor s = selectors(t, x);
    const torch::Tensor mixture =
        torch::bmm(expertWeights(t, x, s).unsqueeze(1), stacked).squeeze(1);
    if (perTaskFeatures_) out.features.push_back(mixture);
    out.outputs.push_back(heads_->ptr<nn::SequentialImpl>(t)->forward(mixture));
    regularizer = regularizer - entropyWeight_ * (s * torch::log(s + 1e-6)).sum();
    if (!powerOfTwo_) regularizer = regularizer + (1.0 / s.sum(-1)).sum();
  }
  out.extraLosses.push_back(regularizer.to(out.outputs.front().dtype()));
  return out;
}

std::vector<torch::Tensor> DSelectKModel::sharedParameters() const {
  return experts_->parameters();
}

std::vector<torch::Tensor> DSelectKModel::taskParameters(std::size_t task) const {
  std::vector<torch::Tensor> out = selectorLogits_->ptr(task)->parameters();
  for (const auto& p : weightLogits_->ptr(task)->parameters()) out.push_back(p);
  for (const auto& p : heads_->ptr(task)->parameters()) out.push_back(p);
  return out;
}

std::vector<torch::Tensor> DSelectKModel::lastSharedLayer() const {
  return weightsAndBiases(lastLayers_);
}

std::vector<std::string> DSelectKModel::featureNames() const {
  if (perTaskFeatures_) return numberedNames("mixture", taskCount());
  return numberedNames("expert", experts_->size());
}

ArchitectureInfo dselectKArchitecture() {
  ArchitectureInfo row;
  row.name = "dselect_k";
  row.description = "mixture of experts with differentiable top-k selection per task";
  row.reference = "Hazimeh et al., NeurIPS 2021";
  row.plan = [](const ConfigNode& model, const ModelContext& context) {
    const int64_t experts = model.getInt("experts", 4, 2, 1000);
    const int64_t k = model.getInt("k", 2, 1, experts);
    const double gamma = model.getDouble("gamma", 1.0, 1e-6, 1e6);
    const double entropyWeight = model.getDouble("entropy_weight", 1e-6, 0.0, 1e6);
    const bool perTaskFeatures = readPerTaskFeatures(model);
    const TrunkPlan trunk = planTrunk(model.child("trunk"), context);
    const HeadPlan head = planHead(model.child("head"), context);
    const auto tasks = static_cast<double>(context.tasks.size());
    const auto in = static_cast<double>(exampleElements(context.inputShape));
    const auto bits = static_cast<double>(bitsFor(experts));
    ModelPlan plan;
    plan.provides.lastSharedLayer = trunk.hasLastLinear;
    plan.size.parameters =
        static_cast<double>(experts) * trunk.size.parameters +
        tasks * (in + 1.0) * (static_cast<double>(k) * bits + static_cast<double>(k));
    plan.size.activationWidth = static_cast<double>(experts) * trunk.size.activationWidth;
    addHeadSize(plan.size, head, trunk.size.width);
    const std::vector<TaskSpec> taskList = context.tasks;
    plan.build = [=](const std::vector<int64_t>& inputShape) {
      std::vector<TrunkParts> parts;
      for (int64_t e = 0; e < experts; ++e) parts.push_back(trunk.build(inputShape));
      const int64_t width = parts.front().width;
      const auto heads = buildHeads(head, width, taskList);
      auto built = std::make_shared<DSelectKModel>(std::move(parts), exampleElements(inputShape), k,
                                                   gamma, entropyWeight, heads);
      built->setPerTaskFeatures(perTaskFeatures);
      return built;
    };
    return plan;
  };
  return row;
}

}  // namespace fulcrum
