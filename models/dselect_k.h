// DSelect-k: Hazimeh, Zhao, Chowdhery, Sathiamoorthy, Chen, Mazumder, Hong,
// Chi, "DSelect-k: Differentiable Selection in the Mixture of Experts with
// Applications to Multi-Task Learning", NeurIPS 2021.
#pragma once

#include <torch/nn/modules/container/modulelist.h>

#include "models/registry.h"

namespace fulcrum {

/// E shared experts (each a `model.trunk`); task t selects among them with k
/// differentiable selectors. With b = ⌈log₂ E⌉, z = Z_t x̄ (k × b) and the
/// smooth step S_γ(u) = 0 for u ≤ −γ/2, 1 for u ≥ γ/2, else
/// −2u³/γ³ + 3u/(2γ) + 1/2:
/// \f[ s_{j,e} = \prod_{i=1}^{b} \big(c_{e,i}\, S_\gamma(z_{j,i}) + (1-c_{e,i})(1 -
/// S_\gamma(z_{j,i}))\big),
///     \quad w_e = \sum_j \mathrm{softmax}(A_t \bar x)_j\, s_{j,e},
///     \quad y_t = h_t\Big(\sum_e w_e f_e(x)\Big) \f]
/// with c_e the binary code of e (most significant bit first). Its extra
/// loss (`dselect_k_regularizer`), per task and summed over the tasks:
/// −λ Σ s log(s + 10⁻⁶), plus Σ_{n,j} 1/Σ_e s when E is not a power of 2
/// (LibMTL's expression; LibMTL takes the last task's selectors only).
/// Initialisation as LibMTL: Z ~ U(±γ/100), A ~ U(±0.05). Features: the
/// expert outputs (`features: per_task`: each task's mixture, see
/// readPerTaskFeatures); shared: the experts; task t: Z_t, A_t and its head.
class DSelectKModel : public MultiTaskModel {
 public:
  DSelectKModel(std::vector<TrunkParts> experts, int64_t inputs, int64_t k, double gamma,
                double entropyWeight, const std::vector<torch::nn::Sequential>& heads);
  ModelOutput forward(const ModelInputs& inputs) override;
  std::vector<torch::Tensor> sharedParameters() const override;
  std::vector<torch::Tensor> taskParameters(std::size_t task) const override;
  std::vector<torch::Tensor> lastSharedLayer() const override;
  std::vector<std::string> extraLossNames() const override { return {"dselect_k_regularizer"}; }
  std::vector<std::string> featureNames() const override;
  std::size_t taskCount() const override { return heads_->size(); }
  /// Task `task`'s selector outputs s (B × k × E) on `input`, for tests.
  torch::Tensor selectors(std::size_t task, const torch::Tensor& input);
  /// Task `task`'s expert weights w (B × E).
  torch::Tensor expertWeights(std::size_t task, const torch::Tensor& input, const torch::Tensor& s);
  /// Features: each task's mixture (`features: per_task`) instead of the experts.
  void setPerTaskFeatures(bool perTask) { perTaskFeatures_ = perTask; }

 private:
  torch::nn::ModuleList experts_{nullptr};
  torch::nn::ModuleList selectorLogits_{nullptr};  ///< Z_t: inputs → k·b
  torch::nn::ModuleList weightLogits_{nullptr};    ///< A_t: inputs → k
  torch::nn::ModuleList heads_{nullptr};
  std::vector<torch::nn::Linear> lastLayers_;
  torch::Tensor codes_;  ///< E × b, 1 where bit i of e is set (MSB first)
  int64_t k_ = 1, bits_ = 1;
  double gamma_ = 1.0, entropyWeight_ = 1e-6;
  bool powerOfTwo_ = true;
  bool perTaskFeatures_ = false;
};

/// `model.architecture: dselect_k`. Options: `experts` (E, in [2, 1000],
/// default 4), `k` (selectors, in [1, E], default 2), `gamma` (γ of the
/// smooth step, > 0, default 1), `entropy_weight` (λ ≥ 0, default 1e-6).
ArchitectureInfo dselectKArchitecture();

}  // namespace fulcrum
