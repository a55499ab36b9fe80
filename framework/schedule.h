// The training protocol around the step: the learning-rate schedule
// (`train.scheduler`), and the validation criterion that reduce-on-plateau
// and early stopping (`train.early_stopping`) watch. Fulcrum's own, not
// LibTorch's (1.13 has StepLR only, without save or load): the rate is a
// function lr = f(epoch, step, plateau state), so a resumed trial restores
// the state and sets every group's rate again (optimizer.load() drops the
// groups' options).
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "framework/config_node.h"
#include "framework/task.h"

namespace fulcrum {

/// A validation metric a trial watches: `TASK/METRIC` (e.g.
/// `segmentation/miou`) or `loss`, the mean of the tasks' validation losses.
struct ValidationCriterion {
  std::string name;             ///< as written: "loss" or "TASK/METRIC"
  int64_t task = -1;            ///< -1: the mean loss over tasks
  int64_t metric = 0;           ///< index into metricNames(task's kind)
  bool higherIsBetter = false;  ///< from the task-kind table, or `mode:`

  /// The criterion's value in one split's values[task][metric]; NaN where the
  /// metric is (a task without a labelled row is left out of the mean loss).
  double valueIn(const std::vector<std::vector<double>>& values) const;
};

/// Reads `key` of `node` ("TASK/METRIC" or "loss", default `fallback`) and
/// `mode` (auto, min, max) against `tasks`; ConfigError at the key otherwise.
ValidationCriterion readCriterion(const ConfigNode& node, const std::string& key,
                                  const std::string& fallback, const std::vector<TaskSpec>& tasks);

/// True if `value` improves on `best` by more than `threshold` in the
/// criterion's direction: relatively (best·(1 ∓ threshold), PyTorch's
/// ReduceLROnPlateau default) or absolutely (best ∓ threshold). NaN never
/// improves; anything else improves on a NaN `best` (nothing seen yet).
bool improves(double value, double best, bool higherIsBetter, double threshold, bool relative);

/// `train.scheduler:`. Lengths (step_size, milestones, t_max, warmup) count
/// in `interval` units: epochs (the rate changes once per epoch, after its
/// evaluation: PyTorch's `scheduler.step()` after each epoch) or steps.
struct ScheduleSpec {
  /// "constant", "step", "multistep", "exponential", "cosine" or "plateau".
  std::string kind = "constant";
  bool perStep = false;             ///< `interval: step` (not plateau)
  int64_t stepSize = 1;             ///< step: lr0·γ^⌊t/step_size⌋
  std::vector<int64_t> milestones;  ///< multistep: lr0·γ^(milestones ≤ t)
  double gamma = 0.1;               ///< step, multistep (0.1), exponential (required)
  int64_t tMax = 0;                 ///< cosine: length of the half cosine (0: the rest of training)
  double minLr = 0.0;               ///< cosine: η_min; plateau: the floor
  int64_t warmup = 0;               ///< linear warm-up length (0: none)
  double warmupStart = 1.0 / 3.0;   ///< warm-up's first factor (PyTorch's LinearLR)
  ValidationCriterion criterion;    ///< plateau
  double factor = 0.1;              ///< plateau: lr ← max(lr·factor, min_lr)
  int64_t patience = 10;            ///< plateau: epochs without improvement tolerated
  double threshold = 1e-4;          ///< plateau: the least improvement that counts
  bool relativeThreshold = true;    ///< plateau: `threshold_mode: rel` (or abs)
  int64_t cooldown = 0;             ///< plateau: epochs after a reduction without counting
};

/// Reads `train.scheduler` (absent: constant) against the trial's `tasks`.
ScheduleSpec readScheduleSpec(const ConfigNode& node, const std::vector<TaskSpec>& tasks);

/// Reduce-on-plateau's state between epochs (checkpointed).
struct PlateauState {
  double best = std::numeric_limits<double>::quiet_NaN();  ///< NaN: nothing seen yet
  int64_t badEpochs = 0;
  int64_t cooldownLeft = 0;
  double lr = 0.0;  ///< the rate in force (0: not started: the base rate)
};

/// A trial's learning rate: lr = f(t) for the epoch or step t, or the
/// plateau state after each epoch's validation.
class LearningRateSchedule {
 public:
  /// `epochs` and `stepsPerEpoch` of the trial fix cosine's default t_max.
  LearningRateSchedule(ScheduleSpec spec, double baseLr, int64_t epochs, int64_t stepsPerEpoch);

  /// The rate of global step `step` (0-based) of epoch `epoch` (0-based).
  double rate(int64_t epoch, int64_t step) const;
  /// After epoch `epoch`'s evaluation: what plateau watches in the
  /// validation split's values[task][metric]. No effect for other kinds.
  void endEpoch(int64_t epoch, const std::vector<std::vector<double>>& validation);

  /// The plateau state, for checkpoints; restore() takes it back.
  const PlateauState& state() const { return plateau_; }
  void restore(const PlateauState& state);

 private:
  ScheduleSpec spec_;
  double baseLr_;
  int64_t length_;  ///< training length in interval units
  PlateauState plateau_;
};

/// `train.early_stopping:` — stop when the criterion has not improved for
/// `patience` evaluations.
struct EarlyStoppingSpec {
  bool enabled = false;
  ValidationCriterion criterion;
  int64_t patience = 10;  ///< epochs without improvement before stopping (>= 1)
  double minDelta = 0.0;  ///< the least (absolute) improvement that counts
  int64_t minEpochs = 0;  ///< never stop before this many epochs
};

/// Reads `train.early_stopping` (absent: disabled) against `tasks`.
EarlyStoppingSpec readEarlyStoppingSpec(const ConfigNode& node, const std::vector<TaskSpec>& tasks);

/// Early stopping's state between epochs (checkpointed).
struct EarlyStoppingState {
  double best = std::numeric_limits<double>::quiet_NaN();  ///< NaN: nothing seen yet
  int64_t bestEpoch = -1;                                  ///< 0-based; -1: none yet
  int64_t badEpochs = 0;
};

/// Watches the criterion after every epoch's evaluation.
class EarlyStopping {
 public:
  explicit EarlyStopping(EarlyStoppingSpec spec) : spec_(std::move(spec)) {}
  /// After epoch `epoch` (0-based): "" to go on, else why the trial stops
  /// ("val top_left/accuracy has not improved for 5 epochs; best 0.91 after
  /// epoch 12"). Always "" when disabled.
  std::string endEpoch(int64_t epoch, const std::vector<std::vector<double>>& validation);
  const EarlyStoppingState& state() const { return state_; }
  void restore(const EarlyStoppingState& state) { state_ = state; }

 private:
  EarlyStoppingSpec spec_;
  EarlyStoppingState state_;
};

}  // namespace fulcrum
