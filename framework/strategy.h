// The weighting-strategy contract. A strategy turns the T per-task losses of
// a step into the update: either an objective for the trainer to
// back-propagate (loss weighting), or a combined gradient for the shared
// parameters or the shared representation (gradient manipulation).
// framework/ never names a concrete strategy; strategies/ implement this.
#pragma once

#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "framework/task.h"

namespace fulcrum {

/// What a strategy needs computed each step, cheapest first.
enum class GradientNeed {
  kLosses,            ///< the losses only
  kRepresentation,    ///< ∂L_i/∂z for the model's features z (ModelOutput::features)
  kLastSharedLayer,   ///< ∂L_i/∂W for the last shared layer's parameters
  kSharedParameters,  ///< ∂L_i/∂θ for every shared parameter
};

/// "losses", "representation", "last_shared_layer" or "shared_parameters".
std::string toString(GradientNeed need);

/// The elements of `tensor` (any shape, device and dtype; detached) as
/// doubles on the host, in row-major order: how losses, weights and small
/// results leave the device.
std::vector<double> toDoubles(const torch::Tensor& tensor);

/// Per-task gradients of the current step. Each matrix is computed at most
/// once per step, on the model's device and dtype, into storage reused from
/// step to step; rows follow the task order.
class GradientSource {
 public:
  virtual ~GradientSource() = default;
  /// T × P: row i is ∂L_i/∂θ over all shared parameters, flattened in order.
  virtual const torch::Tensor& sharedParameters() = 0;
  /// T × P_W: row i is ∂L_i/∂W over the last shared layer (weight, then bias).
  virtual const torch::Tensor& lastSharedLayer() = 0;
  /// T × F: row i is ∂L_i/∂z over the batch's features (hard sharing: the
  /// representation, B·D), every feature flattened in order.
  virtual const torch::Tensor& representation() = 0;
};

/// What a strategy learns about the model when it is attached.
struct StrategyContext {
  std::vector<TaskSpec> tasks;                ///< in head order
  torch::Device device = torch::kCPU;         ///< of the model
  torch::ScalarType dtype = torch::kFloat32;  ///< of the model
  int64_t sharedParameterCount = 0;           ///< P
  int64_t lastSharedLayerParameterCount = 0;  ///< P_W
  int64_t stepsPerEpoch = 0;                  ///< training batches per epoch
  uint64_t seed = 0;                          ///< for strategies that sample
};

/// The inputs of one step.
struct StepInput {
  StepInput(const std::vector<torch::Tensor>& losses_, GradientSource& gradients_,
            int64_t step_ = 0, int64_t epoch_ = 0, std::vector<bool> present_ = {})
      : losses(losses_),
        gradients(gradients_),
        step(step_),
        epoch(epoch_),
        present(std::move(present_)) {}
  /// T scalar losses; each has its own graph (through its head and the trunk).
  const std::vector<torch::Tensor>& losses;
  /// Per-task gradients, computed on demand.
  GradientSource& gradients;
  int64_t step = 0;   ///< global step, from 0
  int64_t epoch = 0;  ///< from 0
  /// Which tasks have at least one labelled row in this batch (data with
  /// missing labels). Empty when every task is present, as always for fully
  /// labelled data. An absent task's loss is an exact zero whose gradient is
  /// zero everywhere; it must receive no loss and no gradient this step.
  std::vector<bool> present;
};

/// True if task `task` is present in `input` (see StepInput::present).
inline bool isPresent(const StepInput& input, std::size_t task) {
  return input.present.empty() || input.present[task];
}

/// The update a strategy produces for one step.
struct StepOutput {
  enum class Kind {
    kObjective,               ///< back-propagate `objective` through everything
    kSharedGradient,          ///< `direction` (P) is the shared parameters' gradient
    kRepresentationGradient,  ///< `direction` (F) is the gradient on the features
  };
  Kind kind = Kind::kObjective;
  /// kObjective: a scalar; its gradient reaches the model and the strategy's
  /// own parameters().
  torch::Tensor objective;
  /// The combined gradient for the direction kinds. Heads then receive
  /// w_i ∂L_i/∂φ_i with w = `weights`.
  torch::Tensor direction;
  /// T task weights as applied this step (logged; detached).
  torch::Tensor weights;
  /// Values named by Strategy::diagnosticNames(), or empty.
  std::vector<double> diagnostics;
};

/// Training statistics handed to Strategy::onEpochEnd.
struct EpochStats {
  int64_t epoch = 0;                    ///< the epoch that ended, from 0
  std::vector<double> meanTrainLosses;  ///< per task, mean over the epoch's steps
};

/// Named tensors: a strategy's state for checkpoints.
using StrategyState = std::map<std::string, torch::Tensor>;

/// A task-weighting strategy. Built from its YAML options by its factory
/// (which validates them), attached once to a model, then stepped.
class Strategy {
 public:
  virtual ~Strategy() = default;
  /// What step() will ask the GradientSource for.
  virtual GradientNeed needs() const = 0;
  /// Called once before training; create parameters and private optimizers here.
  virtual void attach(const StrategyContext& context) { (void)context; }
  /// Learnable parameters to train with the model's optimizer (no weight decay).
  virtual std::vector<torch::Tensor> parameters() { return {}; }
  /// Computes the update for one step.
  virtual StepOutput step(const StepInput& input) = 0;
  /// Called after every training epoch.
  virtual void onEpochEnd(const EpochStats& stats) { (void)stats; }
  /// True if the strategy wants the step's T losses measured again after the
  /// optimizer step: the trainer then runs a no-grad forward pass on the same
  /// batch and calls afterStep(). Default false (no extra pass).
  virtual bool wantsLossesAfterStep() const { return false; }
  /// The step's losses on the same batch after the optimizer step (finite, in
  /// task order); called once after every step() when wantsLossesAfterStep().
  virtual void afterStep(const std::vector<double>& lossesAfter) { (void)lossesAfter; }
  /// True if step() itself honours StepInput::present (an absent task gets no
  /// loss and no gradient, and the update stays finite). Strategies that
  /// return false (the default) are wrapped by the registry, which steps a
  /// copy of the strategy built for the present tasks only on such steps.
  virtual bool handlesAbsentTasks() const { return false; }
  /// Names of the per-step diagnostics step() reports.
  virtual std::vector<std::string> diagnosticNames() const { return {}; }
  /// State to checkpoint, and its restoration (after attach()).
  virtual StrategyState state() const { return {}; }
  virtual void loadState(const StrategyState& state) { (void)state; }
};

}  // namespace fulcrum
