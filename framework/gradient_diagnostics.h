// Gradient diagnostics (README "Gradient diagnostics"): an observer of the
// trainer's steps. Every `every` steps it reads what the step computed —
// the per-task gradients on the shared parameters, the direction the
// optimizer receives, the change it makes — and changes nothing.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "framework/run_log.h"
#include "framework/strategy.h"

namespace fulcrum {

class GradientDiagnostics {
 public:
  /// `every` ≤ 0, or no shared parameters (a model that shares nothing):
  /// never due.
  GradientDiagnostics(int64_t every, std::vector<torch::Tensor> shared);

  /// Whether step `step` is observed (steps 0, every, 2·every, ...).
  bool due(int64_t step) const;
  /// Before the update is applied: ‖∇L_i‖ and the pairwise cosines from the
  /// per-task gradients of `source` (free when the strategy asked for them).
  void beforeUpdate(int64_t step, int64_t epoch, GradientSource& source);
  /// After the update's backward pass: ‖d‖ of the shared parameters'
  /// gradients; keeps the parameters to measure the optimizer's step.
  void afterBackward();
  /// After the optimizer step: ‖θ_after − θ_before‖.
  void afterOptimizerStep();

  /// The record of the step observed last.
  const GradientRecord& record() const { return record_; }
  /// Time spent observing the current step, in ms (reset by beforeUpdate).
  double milliseconds() const { return milliseconds_; }

 private:
  int64_t every_;
  std::vector<torch::Tensor> shared_;
  std::vector<torch::Tensor> before_;
  GradientRecord record_;
  double milliseconds_ = 0.0;
};

}  // namespace fulcrum
