// Dynamic Weight Average: Liu, Johns, Davison, "End-to-End Multi-Task
// Learning with Attention", CVPR 2019 (eq. 7).
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum {

/// Which losses the descent rates w_k are measured on.
enum class DwaMode {
  kEpoch,   ///< epoch-average training losses, as in the paper
  kWindow,  ///< means over sliding windows of steps (see DynamicWeightAverage)
};

/// Options of `name: dwa`.
struct DwaOptions {
  /// `temperature`: τ > 0; larger τ gives weights closer to 1. Default 2 (the paper's).
  double temperature = 2.0;
  /// `mode`: `epoch` (default) or `window`.
  DwaMode mode = DwaMode::kEpoch;
  /// `window`: W >= 1 steps per window; allowed only with `mode: window`. Default 25.
  int64_t window = 25;
};

/// Reads and validates the options above (ConfigError on a bad value, and on
/// `window` given with `mode: epoch`).
DwaOptions readDwaOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// Dynamic Weight Average (eq. 7):
/// \f[ \lambda_k(t) = \frac{T \exp(w_k(t-1)/\tau)}{\sum_i \exp(w_i(t-1)/\tau)},\qquad
///     w_k(t-1) = \frac{L_k(t-1)}{L_k(t-2)},\qquad L = \sum_k \lambda_k L_k \f]
/// - mode epoch: L_k(e) is task k's mean training loss of epoch e (from
///   onEpochEnd); λ = 1 until two epochs have ended, i.e. in epochs 0 and 1.
/// - mode window: counting the steps this strategy has seen, at step t with
///   at least 2W earlier steps, w_k = (mean of L_k over steps t−W … t−1) /
///   (mean of L_k over steps t−2W … t−W−1): two adjacent windows that slide
///   by one step every step, across epoch boundaries, ending just before the
///   current step. λ = 1 for the first 2W steps. onEpochEnd is ignored.
/// The objective is the sum Σ λ_k L_k in both modes (some implementations
/// use the mean, which is this divided by T). A zero denominator L_k(t−2) is
/// a std::runtime_error. Needs the losses only.
class DynamicWeightAverage final : public Strategy {
 public:
  DynamicWeightAverage(DwaOptions options, std::vector<TaskSpec> tasks);

  GradientNeed needs() const override { return GradientNeed::kLosses; }
  /// Checks that the model has the tasks this strategy was built for.
  void attach(const StrategyContext& context) override;
  StepOutput step(const StepInput& input) override;
  /// Absent tasks: the loss is an exact zero in Σ λ_i L_i; epoch means are over
  /// the labelled steps (trainer); `window` mode skips steps with an absent task.
  bool handlesAbsentTasks() const override { return true; }
  /// Mode epoch: records the epoch's mean training losses.
  void onEpochEnd(const EpochStats& stats) override;
  /// {"history": k × T float64} — the last two epochs' mean losses (epoch
  /// mode, k <= 2) or the last 2W steps' losses (window mode, k <= 2W),
  /// oldest first.
  StrategyState state() const override;
  void loadState(const StrategyState& state) override;

  /// The weights λ the next step will apply.
  std::vector<double> currentWeights() const;

 private:
  std::size_t capacity() const;

  DwaOptions options_;
  std::vector<TaskSpec> tasks_;
  std::deque<std::vector<double>> history_;  // oldest first, at most capacity()
};

}  // namespace fulcrum
