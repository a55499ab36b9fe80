// Hard parameter sharing (Caruana 1997): one trunk, one head per task.
#pragma once

#include <torch/nn/modules/container/modulelist.h>

#include <vector>

#include "models/registry.h"

namespace fulcrum {

/// z = trunk(x) (B × D, or feature maps), y_t = head_t(z). Features: z (one
/// per input batch when the tasks have their own inputs). Shared: the trunk;
/// task t: head t. With `dense`, a head's per-pixel outputs smaller than the
/// input are upsampled bilinearly (align_corners, as LibMTL) to its H × W.
class HardSharingModel : public MultiTaskModel {
 public:
  HardSharingModel(TrunkParts trunk, const std::vector<torch::nn::Sequential>& heads,
                   bool dense = false);
  ModelOutput forward(const ModelInputs& inputs) override;
  std::vector<torch::Tensor> sharedParameters() const override;
  std::vector<torch::Tensor> taskParameters(std::size_t task) const override;
  std::vector<torch::Tensor> lastSharedLayer() const override;
  std::vector<std::string> featureNames() const override;
  std::size_t taskCount() const override { return heads_->size(); }

 private:
  torch::nn::Sequential trunk_{nullptr};
  torch::nn::Linear lastShared_{nullptr};
  std::vector<torch::Tensor> lastLayer_;  ///< a spatial trunk's, when lastShared_ is empty
  torch::nn::ModuleList heads_{nullptr};
  bool dense_ = false;
};

/// `model.architecture: hps` (the default): `trunk:` and `head:` as their rows say.
ArchitectureInfo hardSharingArchitecture();

}  // namespace fulcrum
