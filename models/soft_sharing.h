// Soft parameter sharing (Duong, Cohn, Bird, Cook, ACL 2015; Yang &
// Hospedales, ICLR 2017 workshop): one trunk per task, tied by a penalty.
#pragma once

#include <torch/nn/modules/container/modulelist.h>

#include "models/registry.h"

namespace fulcrum {

/// Task t has its own trunk θ_t (all alike, from `model.trunk`) and head:
/// y_t = head_t(trunk_t(x)). Its extra loss (`soft_sharing_penalty`):
/// \f[ \Omega = \lambda \sum_{i<j} \lVert \theta_i - \theta_j \rVert_2^2 \f]
/// over corresponding trunk parameters. No parameter is reached by two
/// tasks' losses: nothing is shared, the model has no features and no last
/// shared layer, so only loss-weighting strategies apply (the others are
/// refused at validation).
class SoftSharingModel : public MultiTaskModel {
 public:
  SoftSharingModel(std::vector<TrunkParts> trunks, double penalty,
                   const std::vector<torch::nn::Sequential>& heads);
  ModelOutput forward(const ModelInputs& inputs) override;
  std::vector<torch::Tensor> sharedParameters() const override { return {}; }
  std::vector<torch::Tensor> taskParameters(std::size_t task) const override;
  std::vector<std::string> extraLossNames() const override { return {"soft_sharing_penalty"}; }
  std::vector<std::string> featureNames() const override { return {}; }
  std::size_t taskCount() const override { return heads_->size(); }
  /// Ω for the current parameters.
  torch::Tensor penalty() const;

 private:
  torch::nn::ModuleList trunks_{nullptr};
  torch::nn::ModuleList heads_{nullptr};
  double lambda_ = 0.0;
};

/// `model.architecture: soft_sharing`. Options: `penalty` (λ ≥ 0, required).
ArchitectureInfo softSharingArchitecture();

}  // namespace fulcrum
