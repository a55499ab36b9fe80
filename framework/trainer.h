// The common trainer: one trial of one strategy on one model and dataset.
#pragma once

#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/data.h"
#include "framework/experiment.h"
#include "framework/model.h"
#include "framework/run_log.h"
#include "framework/strategy.h"

namespace torch::optim {
class Optimizer;
}

namespace fulcrum {

/// How a trial ended.
struct TrialResult {
  std::string status;        ///< "completed", "failed" or "paused"
  std::string error;         ///< why it failed, naming the task and step
  int64_t steps = 0;         ///< optimisation steps taken
  int64_t skippedSteps = 0;  ///< batches skipped for non-finite values (train.on_nan: skip_step)
};

/// Hooks for a trial's caller.
struct TrainHooks {
  /// Receives one human-readable line per epoch (may be empty).
  std::function<void(const std::string&)> progress;
  /// Polled before every step (may be empty); true ends the trial with status
  /// "failed" and error "interrupted at step N", the curves so far kept.
  std::function<bool()> stopRequested;
  /// Called before every step with the epoch (0-based), the steps of it done
  /// so far and its step count (may be empty): progress inside long epochs.
  std::function<void(int64_t epoch, int64_t stepsDone, int64_t stepsPerEpoch)> stepStarting;
  /// Receives one line per skipped step (train.on_nan: skip_step; may be empty).
  std::function<void(const std::string&)> warning;
  /// Receives one-off lines about the trial itself, such as where a resumed
  /// trial continues (may be empty).
  std::function<void(const std::string&)> notice;
  /// Where the trial's checkpoint goes every train.checkpoint_every epochs
  /// (see framework/checkpoint.h); empty: no checkpoints. It is removed when
  /// the trial completes (just before the log's final write) or fails, and
  /// kept when it is interrupted (stopRequested) or killed.
  std::string checkpointPath;
  /// Where train.save_model writes: "<modelPath>.final.pt" and
  /// "<modelPath>.best.pt" (see saveModel in framework/checkpoint.h); empty:
  /// nothing is saved, whatever train.save_model says.
  std::string modelPath;
  /// Continue from the checkpoint at `checkpointPath`, if there is one: the
  /// trial goes on from the end of its last checkpointed epoch, and the log
  /// is told so (TrialDescription::resumeStep), so that the curves equal an
  /// uninterrupted run's. Without a checkpoint the trial starts at step 0.
  bool resume = false;
  /// 0: train to the end. E >= 1 (< train.epochs): after epoch E is logged,
  /// write the checkpoint (whatever train.checkpoint_every says) and end the
  /// trial with status "paused", error "paused after epoch E of N"; a resume
  /// continues it bit for bit (successive halving's rungs). A trial resumed
  /// at or past epoch E ends paused again at once, its curves unchanged.
  int64_t pauseAfterEpoch = 0;
  /// Polled after setup, after every step and after every evaluation (may be
  /// empty): the LibTorch warnings received since the last call (see
  /// framework/warning_capture.h), "" if none. A warning ends the trial as
  /// failed, its error "LibTorch warning at step N (epoch E): TEXT".
  std::function<std::string()> pendingWarning;
};

/// Sets the intra-op thread count for LibTorch and the BLAS; 0 picks
/// fulcrum's default (one thread: measured fastest for the small models of
/// this framework on 2 cores, see the README). Returns the count in force.
int64_t configureThreads(int64_t requested);

/// The optimizer of `spec` over the model's parameters `model` and the
/// strategy's own parameters `strategy` (a second group without weight decay).
std::unique_ptr<torch::optim::Optimizer> makeOptimizer(const OptimizerSpec& spec,
                                                       std::vector<torch::Tensor> model,
                                                       std::vector<torch::Tensor> strategy);

/// The loss of a task on a batch averaged over the rows that carry a label
/// (missing: kMissingClass or NaN, see framework/data.h); with no labelled
/// row, an exact zero whose gradient is zero everywhere. The trainer uses it
/// when MultiTaskData::missingLabels is set. Throws std::invalid_argument
/// for targets that do not fit the outputs (regression: the same shape;
/// classification and binary: one label per row), never broadcasting them.
torch::Tensor labelledLoss(TaskKind kind, const torch::Tensor& outputs,
                           const torch::Tensor& targets);

/// The metrics of every task (values[task][metric], as metricNames) of
/// `model` on `split`, in evaluation mode and without gradients, in batches
/// of `batchSize`; labels missing where `masking` (MultiTaskData::missingLabels)
/// are left out, NaN for a task without any. What the trainer logs per epoch.
std::vector<std::vector<double>> evaluateSplit(MultiTaskModel& model, const Split& split,
                                               const std::vector<TaskSpec>& tasks,
                                               int64_t batchSize, bool masking);

/// Trains `model` (built for `spec` by makeModel of models/registry.h, which
/// seeds LibTorch's generator with spec.seed first) on `data` with `strategy`, reporting
/// everything to `log`.
/// `description` carries the caller's metadata; the trainer adds the tasks,
/// splits, metrics and timing names before calling log.begin(). A NaN or
/// infinite loss, weight or gradient ends the trial with status "failed"
/// (the curves so far are kept), or with `train.on_nan: skip_step` skips
/// that optimizer step (an epoch with every step skipped still fails); other
/// exceptions propagate after log.end("failed", ...). A checkpoint that
/// cannot be used for `resume` throws CheckpointError before log.begin().
TrialResult train(const ExperimentSpec& spec, const MultiTaskData& data, MultiTaskModel& model,
                  Strategy& strategy, RunLog& log, TrialDescription description,
                  const TrainHooks& hooks = {});

}  // namespace fulcrum
