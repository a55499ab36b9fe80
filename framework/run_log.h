// The sink a trainer reports to. Implemented outside framework/ (tools/
// connects it to the HDF5 writer in results/), so the trainer never sees a
// file format. No torch here: plain numbers only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fulcrum {

/// What a trial will log, fixed before its first step.
struct TrialDescription {
  std::map<std::string, std::string> text;        ///< metadata: config, strategy, host...
  std::map<std::string, int64_t> integers;        ///< metadata: seed, task count...
  std::vector<std::string> tasks;                 ///< task names, in model order
  std::vector<std::string> splits;                ///< evaluated splits ("train", "val", "test")
  std::vector<std::vector<std::string>> metrics;  ///< per task: metric names ("loss" first)
  /// Per task, per metric of `metrics`: true where a larger value is better
  /// (from the task-kind table); recorded in the trial file, so that readers
  /// never guess a direction from a metric's name.
  std::vector<std::vector<bool>> higherIsBetter;
  std::vector<std::string> timings;      ///< per-step timing names, in milliseconds
  std::vector<std::string> diagnostics;  ///< per-step strategy diagnostics names
  /// Steps between two GradientRecords (0: the trial logs none).
  int64_t gradientInterval = 0;
  /// Log the per-epoch count of skipped steps (train.on_nan: skip_step).
  bool countsSkippedSteps = false;
  /// A trial continued from its checkpoint: the log already holds the
  /// earlier run's steps before `resumeStep` and epochs before `resumeEpoch`
  /// (and may hold a few more, logged after the checkpoint); keep those and
  /// log from there on. Both 0 for a trial that starts at step 0.
  int64_t resumeStep = 0;
  int64_t resumeEpoch = 0;
};

/// One optimisation step.
struct StepRecord {
  int64_t step = 0;                 ///< global step, from 0
  int64_t epoch = 0;                ///< epoch the step belongs to, from 0
  std::vector<double> losses;       ///< per task, before weighting
  std::vector<double> weights;      ///< per task, as applied by the strategy
  std::vector<double> timings;      ///< as named in TrialDescription::timings
  std::vector<double> diagnostics;  ///< as named in TrialDescription::diagnostics
};

/// Gradient diagnostics of one step, taken every
/// TrialDescription::gradientInterval steps (steps 0, k, 2k, ...). All norms
/// are Euclidean, over the shared (trunk) parameters.
struct GradientRecord {
  int64_t step = 0;           ///< global step, from 0
  int64_t epoch = 0;          ///< its epoch, from 0
  std::vector<double> norms;  ///< per task: ‖∇_θ L_i‖ (unweighted loss)
  /// Per pair i < j, in the order (0,1), (0,2), …, (1,2), …: the cosine of
  /// the two tasks' gradients; NaN where either gradient is zero.
  std::vector<double> cosines;
  double directionNorm = 0.0;  ///< ‖d‖: the gradient the optimizer received
  double stepNorm = 0.0;       ///< ‖θ_after − θ_before‖: the update it applied
};

/// The evaluation after one epoch.
struct EpochRecord {
  int64_t epoch = 0;         ///< from 0
  double seconds = 0.0;      ///< wall time of the epoch's training
  int64_t skippedSteps = 0;  ///< steps whose optimizer step was skipped (non-finite values)
  /// values[split][task][metric], indexed as in TrialDescription.
  std::vector<std::vector<std::vector<double>>> values;
};

/// Receives a trial's curves as it trains. Calls come in the order
/// begin, ((step gradients?)* epoch)*, end.
class RunLog {
 public:
  virtual ~RunLog() = default;
  /// Called once before the first step.
  virtual void begin(const TrialDescription& description) = 0;
  /// Called after every optimisation step.
  virtual void step(const StepRecord& record) = 0;
  /// Called after the steps that TrialDescription::gradientInterval selects,
  /// right after step() for the same step.
  virtual void gradients(const GradientRecord& record) { (void)record; }
  /// Called after every epoch's evaluation; a good moment to flush.
  virtual void epoch(const EpochRecord& record) = 0;
  /// Called before end() when early stopping ended a completed trial after
  /// `epochs` epochs (fewer than train.epochs), `reason` saying why.
  virtual void stoppedEarly(int64_t epochs, const std::string& reason) {
    (void)epochs;
    (void)reason;
  }
  /// Called once at the end. `status` is "completed", "failed" or "paused"
  /// (TrainHooks::pauseAfterEpoch); `error` says why a trial failed or paused.
  virtual void end(const std::string& status, const std::string& error) = 0;
};

}  // namespace fulcrum
