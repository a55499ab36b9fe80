// Task cascades: ESMM, Ma, Zhao, Huang, Wang, Hu, Zhu, Gai, "Entire Space
// Multi-Task Model: An Effective Approach for Estimating Post-Click
// Conversion Rate", SIGIR 2018 (two stages); with more stages the
// multi-step form of Wen et al., "Entire Space Multi-Task Modeling via
// Post-Click Behavior Decomposition for Conversion Rate Prediction", SIGIR 2020.
#pragma once

#include <torch/nn/modules/container/modulelist.h>

#include "models/registry.h"

namespace fulcrum {

/// Binary tasks as the stages of a funnel (impression → click → conversion
/// ...): z = trunk(x), one tower per stage a_s = h_s(z), and task t predicts
/// that every stage up to t happens,
/// \f[ p_t = \prod_{s \le t} \sigma(a_s), \qquad
///     \text{output}_t = \operatorname{logit}(p_t) \f]
/// so each task's binary cross-entropy is taken on the entire space (ESMM:
/// tasks ctr and ctcvr; pCVR = σ(a_1) itself has no loss). Stage s's tower
/// is reached by the losses of tasks s..T−1: the trunk and every tower but
/// the last are shared, task T−1 owns the last tower, the others own
/// nothing. Features: none (the towers sit between the trunk and the
/// losses, so no tensor cuts every task's loss from the shared parameters).
/// Last shared layer: the trunk's last linear layer.
class CascadeModel : public MultiTaskModel {
 public:
  CascadeModel(TrunkParts trunk, const std::vector<torch::nn::Sequential>& towers);
  ModelOutput forward(const ModelInputs& inputs) override;
  std::vector<torch::Tensor> sharedParameters() const override;
  std::vector<torch::Tensor> taskParameters(std::size_t task) const override;
  std::vector<torch::Tensor> lastSharedLayer() const override;
  std::vector<std::string> featureNames() const override { return {}; }
  std::size_t taskCount() const override { return towers_->size(); }
  /// Each stage's own probability σ(a_s) on `input` (B × 1 each; ESMM's
  /// pCTR and pCVR), for tests and inspection.
  std::vector<torch::Tensor> stageProbabilities(const torch::Tensor& input);

 private:
  torch::nn::Sequential trunk_{nullptr};
  torch::nn::Linear lastShared_{nullptr};
  torch::nn::ModuleList towers_{nullptr};
};

/// `model.architecture: cascade`: `trunk:` (the shared embedding) and
/// `head:` (each stage's tower, default linear). Needs at least two tasks,
/// all binary, in funnel order.
ArchitectureInfo cascadeArchitecture();

}  // namespace fulcrum
