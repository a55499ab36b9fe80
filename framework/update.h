// Applying a strategy's update: one function for the trainer, `fulcrum
// probe` and the landscape, so that "what a StepOutput means" is written once.
#pragma once

#include <torch/types.h>

#include <vector>

#include "framework/strategy.h"

namespace fulcrum {

/// Where an update goes.
struct UpdateTargets {
  /// The shared parameters, in the order of GradientSource::sharedParameters().
  std::vector<torch::Tensor> shared;
  /// Every task-specific parameter (the heads'), in task order; may be empty.
  std::vector<torch::Tensor> taskSpecific;
  /// The step's T losses (each with its graph).
  std::vector<torch::Tensor> losses;
  /// The features a representation gradient acts on (ModelOutput::features;
  /// hard sharing: z); may be empty when the strategy asks for none.
  std::vector<torch::Tensor> features;
};

/// Fills the `.grad` of the targets from `update`:
/// - kObjective: back-propagates the objective (everything it reaches);
/// - kSharedGradient: task-specific parameters get ∂(Σ w_i L_i)/∂φ, the shared
///   ones `direction` (flattened in order);
/// - kRepresentationGradient: task-specific parameters as above, and the
///   shared ones the back-propagation of `direction` (the features'
///   gradients, flattened in order) from the features. The features must
///   cut every path from a shared parameter to a loss (tests/models checks
///   each architecture's), or the shared parameters' gradient is wrong.
/// Gradients are written, not accumulated; the graph of the losses is kept.
void applyUpdate(const StepOutput& update, const UpdateTargets& targets);

/// Adds `gradients` (one per parameter, undefined where a parameter got
/// none, as torch::autograd::grad with allow_unused gives) to their `.grad`.
void addGradients(const std::vector<torch::Tensor>& parameters,
                  const std::vector<torch::Tensor>& gradients);

/// Writes `flat` (the concatenation of every tensor's gradient) into `.grad`.
void assignGradients(const std::vector<torch::Tensor>& parameters, const torch::Tensor& flat);

}  // namespace fulcrum
