// Gradient sources: where strategies get per-task gradients from.
#pragma once

#include <torch/types.h>

#include <vector>

#include "framework/strategy.h"

namespace fulcrum {

/// Per-task gradients of the current step by autograd. Each matrix is
/// computed at most once per step (on first request), into a buffer reused
/// from step to step; backward passes retain the graph for the trainer's
/// final pass. Each task's pass starts from its own scalar loss, so it runs
/// through its own head only.
class AutogradGradientSource : public GradientSource {
 public:
  /// `shared`: the trunk's parameters; `lastLayer`: the last shared layer's.
  AutogradGradientSource(std::vector<torch::Tensor> shared, std::vector<torch::Tensor> lastLayer);

  /// Starts a step with its T losses and the model's features (see
  /// ModelOutput::features; representation() concatenates their gradients).
  void reset(const std::vector<torch::Tensor>& losses, const std::vector<torch::Tensor>& features);

  const torch::Tensor& sharedParameters() override;
  const torch::Tensor& lastSharedLayer() override;
  const torch::Tensor& representation() override;

  /// Number of backward passes made since construction (for tests and benchmarks).
  int64_t backwardPasses() const { return backwardPasses_; }

 private:
  struct Matrix {
    torch::Tensor buffer;
    bool fresh = false;
  };
  void fill(Matrix& matrix, const std::vector<torch::Tensor>& inputs, int64_t width);

  std::vector<torch::Tensor> shared_;
  std::vector<torch::Tensor> lastLayer_;
  int64_t sharedCount_ = 0;
  int64_t lastLayerCount_ = 0;
  const std::vector<torch::Tensor>* losses_ = nullptr;
  std::vector<torch::Tensor> features_;
  int64_t featureCount_ = 0;
  Matrix sharedMatrix_, lastLayerMatrix_, representationMatrix_;
  int64_t backwardPasses_ = 0;
};

/// A source that holds given matrices: for `fulcrum probe` and tests. A
/// last-layer or representation matrix that was not given falls back to the
/// shared-parameter one (a probe has just one matrix); asking for an absent
/// shared-parameter matrix throws std::logic_error.
class FixedGradientSource : public GradientSource {
 public:
  FixedGradientSource(torch::Tensor shared, torch::Tensor lastLayer = {},
                      torch::Tensor representation = {});
  const torch::Tensor& sharedParameters() override;
  const torch::Tensor& lastSharedLayer() override;
  const torch::Tensor& representation() override;

 private:
  torch::Tensor shared_, lastLayer_, representation_;
};

/// Number of elements in `tensors`.
int64_t countElements(const std::vector<torch::Tensor>& tensors);

}  // namespace fulcrum
