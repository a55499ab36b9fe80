// MTAN: Liu, Johns, Davison, "End-to-End Multi-Task Learning with
// Attention", CVPR 2019.
#pragma once

#include <torch/nn/modules/container/modulelist.h>

#include <cstdint>
#include <vector>

#include "models/registry.h"

namespace fulcrum {

/// One shared trunk and, at each of its stages l (TrunkParts::stageEnds),
/// a soft attention module per task that selects from the stage's output
/// s_l what task t takes to the next stage:
/// \f[ m_{t,0} = \mathrm{att}_{t,0}(s_0), \quad
///     m_{t,l} = \mathrm{att}_{t,l}\big([\,s_l ;\ f_{l-1}(a_{t,l-1})\,]\big), \quad
///     a_{t,l} = m_{t,l} \odot s_l, \quad y_t = \mathrm{head}_t(a_{t,L}) \f]
/// att on an image stage (C × H × W): conv1×1(·, C) + BN + ReLU + conv1×1(C, C)
/// + BN + sigmoid, as LibMTL; on a flat stage (D): Linear(·, D) + ReLU +
/// Linear(D, D) + sigmoid. f_l, shared by the tasks (LibMTL's block_att),
/// brings a_{t,l} to stage l+1's shape: conv1×1 + BN + ReLU and a max-pool to
/// its height and width, or Linear + ReLU onto a flat stage. The paper's
/// masks read a block's first convolution and multiply its last; on the
/// stages of fulcrum's trunks (a conv, ReLU and pool, or a Linear and ReLU)
/// both are the stage's output. Shared: the trunk and every f_l; task t: its
/// attention modules and head (LibMTL's get_share_params). Features: none
/// (each task's attended features are its own, and the stage outputs depend
/// on one another). Last shared layer: the trunk's last Linear.
class MtanModel : public MultiTaskModel {
 public:
  /// `stageShapes`: one example's shape after each stage (from a forward pass).
  MtanModel(TrunkParts trunk, const std::vector<std::vector<int64_t>>& stageShapes,
            const std::vector<torch::nn::Sequential>& heads);
  ModelOutput forward(const ModelInputs& inputs) override;
  std::vector<torch::Tensor> sharedParameters() const override;
  std::vector<torch::Tensor> taskParameters(std::size_t task) const override;
  std::vector<torch::Tensor> lastSharedLayer() const override;
  std::vector<std::string> featureNames() const override { return {}; }
  std::size_t taskCount() const override { return heads_->size(); }
  /// Task `task`'s attention mask at every stage on `input`, for tests.
  std::vector<torch::Tensor> masks(std::size_t task, const torch::Tensor& input);

 private:
  /// Runs the model; fills `masks` with task `maskTask`'s masks if given.
  ModelOutput run(const ModelInputs& inputs, std::size_t maskTask,
                  std::vector<torch::Tensor>* masks);

  torch::nn::Sequential trunk_{nullptr};
  torch::nn::Linear lastShared_{nullptr};
  std::vector<std::size_t> stageEnds_;
  torch::nn::ModuleList bridges_{nullptr};    ///< f_0..f_{L−2}, shared
  torch::nn::ModuleList attention_{nullptr};  ///< per task, a ModuleList of L modules
  torch::nn::ModuleList heads_{nullptr};
};

/// The shape of one example after each of `parts`' stages (its stageEnds,
/// and the end of its layers), from a forward pass of zeros in eval mode.
std::vector<std::vector<int64_t>> stageShapes(TrunkParts& parts,
                                              const std::vector<int64_t>& inputShape);

/// `model.architecture: mtan`: `trunk:` (its stages) and `head:`.
ArchitectureInfo mtanArchitecture();

}  // namespace fulcrum
