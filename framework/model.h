// Hard parameter sharing: one shared trunk, one head per task.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "framework/experiment.h"
#include "framework/task.h"

namespace fulcrum {

/// The multi-task model. The trunk maps an input batch to the shared
/// representation z (B × D); head i maps z to task i's outputs.
class MultiTaskModelImpl : public torch::nn::Module {
 public:
  /// Builds the trunk for inputs of `inputShape` (one example) and one head
  /// per task. mlp trunk: Linear+ReLU per width in `trunk.hidden`, z after
  /// the last ReLU. lenet trunk: conv(1,10,k9) ReLU pool2, conv(10,20,k5) ReLU
  /// pool2, fc(500→50) ReLU. Heads: Linear(D, outputs), or an MLP with ReLU.
  MultiTaskModelImpl(const TrunkSpec& trunk, const HeadSpec& head,
                     const std::vector<int64_t>& inputShape, const std::vector<TaskSpec>& tasks);

  /// z = trunk(x), B × D.
  torch::Tensor representation(const torch::Tensor& inputs);
  /// Outputs of task `task`'s head on z: B × outputs.
  torch::Tensor head(std::size_t task, const torch::Tensor& z);

  /// Parameters of the trunk, in a fixed order.
  std::vector<torch::Tensor> sharedParameters() const;
  /// Weight and bias of the trunk's last linear layer (the layer producing z).
  std::vector<torch::Tensor> lastSharedLayerParameters() const;
  /// Parameters of head `task`.
  std::vector<torch::Tensor> headParameters(std::size_t task) const;
  /// Width D of the representation.
  int64_t representationWidth() const { return width_; }
  std::size_t taskCount() const { return heads_->size(); }

 private:
  torch::nn::Sequential trunk_{nullptr};
  torch::nn::Linear lastShared_{nullptr};
  torch::nn::ModuleList heads_{nullptr};
  int64_t width_ = 0;
};
TORCH_MODULE(MultiTaskModel);

}  // namespace fulcrum
