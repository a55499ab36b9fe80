// Experts mixed by one softmax gate per task: the model behind MMoE (every
// expert shared) and CGC (shared experts plus each task's own).
#pragma once

#include <torch/nn/modules/container/modulelist.h>

#include <cstdint>
#include <vector>

#include "models/registry.h"

namespace fulcrum {

/// For task t on input x (flattened to x̄ for the gate):
/// \f[ g_t = \mathrm{softmax}(W_t \bar x + b_t), \quad
///     y_t = h_t\Big(\sum_{e} g_{t,e}\, f_e(x)\Big) \f]
/// over the shared experts f_1..f_S, then task t's own experts. Features:
/// the shared experts' outputs (every task's loss passes through them), or
/// with `features: per_task` each task's mixture (see readPerTaskFeatures).
/// Shared: the shared experts; task t: its experts, its gate and its head.
/// Last shared layer: every shared expert's last linear layer.
class GatedExpertsModel : public MultiTaskModel {
 public:
  /// `taskExperts[t]` may be empty (MMoE); `gates[t]` maps the flattened
  /// input to S + |taskExperts[t]| logits.
  GatedExpertsModel(std::vector<TrunkParts> sharedExperts,
                    std::vector<std::vector<TrunkParts>> taskExperts,
                    const std::vector<torch::nn::Linear>& gates,
                    const std::vector<torch::nn::Sequential>& heads);
  ModelOutput forward(const ModelInputs& inputs) override;
  std::vector<torch::Tensor> sharedParameters() const override;
  std::vector<torch::Tensor> taskParameters(std::size_t task) const override;
  std::vector<torch::Tensor> lastSharedLayer() const override;
  std::vector<std::string> featureNames() const override;
  std::size_t taskCount() const override { return heads_->size(); }
  /// Task `task`'s gate values g_t on `input` (B × experts), for tests.
  torch::Tensor gate(std::size_t task, const torch::Tensor& input);
  /// Features: each task's mixture (`features: per_task`) instead of the experts.
  void setPerTaskFeatures(bool perTask) { perTaskFeatures_ = perTask; }

 private:
  torch::nn::ModuleList experts_{nullptr};      ///< shared
  torch::nn::ModuleList taskExperts_{nullptr};  ///< per task, a ModuleList
  torch::nn::ModuleList gates_{nullptr};
  torch::nn::ModuleList heads_{nullptr};
  std::vector<torch::nn::Linear> lastLayers_;  ///< of the shared experts; empty if one lacks it
  bool perTaskFeatures_ = false;
};

/// The plan of a gated-experts model with `shared` shared experts and
/// `perTask` experts of each task's own, all built from `model.trunk`.
ModelPlan planGatedExperts(const ConfigNode& model, const ModelContext& context, int64_t shared,
                           int64_t perTask);

}  // namespace fulcrum
