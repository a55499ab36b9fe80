// The multi-task model contract: what the trainer, the gradient sources and
// the strategies may rely on, whatever the architecture. framework/ names no
// architecture; models/ holds them (hard sharing, MMoE, CGC, ...) in one
// registry table, and a program's own models register there alike.
#pragma once

#include <torch/nn/module.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fulcrum {

/// A model's inputs for one step: one batch that every task sees, or one
/// batch per task (multi-input MTL, Office-style), in task order.
using ModelInputs = std::vector<torch::Tensor>;

/// What a model computes for one batch.
struct ModelOutput {
  /// Per task, B_t × outputs (B_t: the rows of the task's input).
  std::vector<torch::Tensor> outputs;
  /// The features at which representation-gradient strategies act: tensors
  /// that every task's loss passes through (hard sharing: the representation
  /// z; MMoE: the expert outputs). Empty for a model that has none.
  std::vector<torch::Tensor> features;
  /// The architecture's own scalar losses (soft sharing's penalty,
  /// DSelect-k's regulariser), named by extraLossNames(); returned, never
  /// back-propagated here. The strategies never see them: their gradients
  /// are added to the strategy's update, before the optimizer step.
  std::vector<torch::Tensor> extraLosses;
};

/// What a model offers the strategies besides its outputs; known before the
/// model is built, so that a strategy needing what is missing is refused
/// when the experiment is validated.
struct ModelProvides {
  bool features = true;          ///< ModelOutput::features is not empty
  bool lastSharedLayer = true;   ///< lastSharedLayer() is not empty
  bool sharedParameters = true;  ///< sharedParameters() is not empty
};

/// A multi-task model. Parameters are either shared (reached by several
/// tasks' losses) or belong to one task; every trainable parameter is in
/// exactly one of sharedParameters() and taskParameters(0..T−1).
class MultiTaskModel : public torch::nn::Module {
 public:
  /// Every task's outputs and the features for `inputs`: one tensor (all
  /// tasks) or one per task.
  virtual ModelOutput forward(const ModelInputs& inputs) = 0;
  /// Parameters reached by more than one task's loss, in a fixed order.
  virtual std::vector<torch::Tensor> sharedParameters() const = 0;
  /// Parameters of task `task` alone (its head, gates, own experts).
  virtual std::vector<torch::Tensor> taskParameters(std::size_t task) const = 0;
  /// The last layer of shared parameters (GradNorm's W), weight then bias;
  /// empty if the model has none.
  virtual std::vector<torch::Tensor> lastSharedLayer() const { return {}; }
  /// Names of the extra losses forward() returns (each logged as its own
  /// per-step curve); empty by default.
  virtual std::vector<std::string> extraLossNames() const { return {}; }
  /// Names of the features, in ModelOutput::features order (for messages).
  virtual std::vector<std::string> featureNames() const = 0;
  /// Number of tasks.
  virtual std::size_t taskCount() const = 0;
  /// Called by the trainer before each epoch `epoch` (from 0) of `epochs`,
  /// also after a resume; for models whose forward pass depends on where
  /// training is (LTB's warm-up and temperature). Does nothing by default.
  virtual void beginEpoch(int64_t /*epoch*/, int64_t /*epochs*/) {}
};

/// The one input of `inputs` that task `task` sees: inputs[0] for a shared
/// batch, inputs[task] for per-task batches. std::invalid_argument if
/// `inputs` has neither 1 nor `taskCount` tensors.
const torch::Tensor& inputOf(const ModelInputs& inputs, std::size_t task, std::size_t taskCount);

}  // namespace fulcrum
