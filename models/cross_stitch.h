// Cross-stitch networks: Misra, Shrivastava, Gupta, Hebert, "Cross-stitch
// Networks for Multi-task Learning", CVPR 2016.
#pragma once

#include <torch/nn/modules/container/modulelist.h>

#include "models/registry.h"

namespace fulcrum {

/// One column per task (each a `model.trunk`), and after each of the
/// trunk's stages l a learned T × T mixing of the columns' outputs:
/// \f[ \tilde h_{t,l} = \sum_j \alpha_l[t][j]\, h_{j,l}, \qquad
///     h_{t,l+1} = \mathrm{stage}_{t,l+1}(\tilde h_{t,l}), \qquad y_t = \mathrm{head}_t(\tilde
///     h_{t,L}) \f]
/// α_l starts at `same` on the diagonal and `other` off it (the paper's
/// (0.9, 0.1) by default; LibMTL uses all ones). Every column reaches every
/// task's loss through the mixing, so the columns and α are shared; the
/// heads are the tasks' own. Features: the mixed outputs h̃_{t,L}, one per
/// task (as LibMTL's per-task column outputs): the last α sits between the
/// columns and the heads, so only after it do the features cut every path
/// from the shared parameters to the losses. Last shared layer: every
/// column's last Linear.
class CrossStitchModel : public MultiTaskModel {
 public:
  CrossStitchModel(std::vector<TrunkParts> columns, double same, double other,
                   const std::vector<torch::nn::Sequential>& heads);
  ModelOutput forward(const ModelInputs& inputs) override;
  std::vector<torch::Tensor> sharedParameters() const override;
  std::vector<torch::Tensor> taskParameters(std::size_t task) const override;
  std::vector<torch::Tensor> lastSharedLayer() const override;
  std::vector<std::string> featureNames() const override;
  std::size_t taskCount() const override { return heads_->size(); }

 private:
  torch::nn::ModuleList columns_{nullptr};
  torch::nn::ModuleList heads_{nullptr};
  torch::Tensor alpha_;                 ///< stages × T × T
  std::vector<std::size_t> stageEnds_;  ///< of every column (all alike)
  std::vector<torch::nn::Linear> lastLayers_;
};

/// `model.architecture: cross_stitch`. Options: `init_same` (0.9) and
/// `init_other` (0.1): α's initial diagonal and off-diagonal values.
ArchitectureInfo crossStitchArchitecture();

}  // namespace fulcrum
