// Fixed task weights: the baseline every weighting method is compared with.
#pragma once

#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum {

/// Options of `name: fixed`.
struct FixedOptions {
  /// `weights`: α_i, one per task in task order, each > 0.
  /// Default (empty): 1 for every task ("equal weighting").
  std::vector<double> weights;
  /// `normalize`: if true, apply α_i / Σ_j α_j so the weights sum to 1.
  /// Default false.
  bool normalize = false;
};

/// Reads and validates `weights` and `normalize` (ConfigError located at the
/// offending key: wrong count, or a weight that is not > 0). Fills `weights`
/// with one 1 per task when the key is absent.
FixedOptions readFixedOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// Fixed task weights, the same at every step (no paper; the "equal
/// weighting" baseline when every α_i = 1):
/// \f[ L = \sum_i \alpha_i L_i \f]
/// with α_i as given, or α_i / Σ_j α_j when `normalize` is set.
/// Needs the losses only.
class FixedWeights final : public Strategy {
 public:
  /// `options.weights` must be empty (all 1) or hold one weight > 0 per task
  /// (std::invalid_argument otherwise).
  FixedWeights(FixedOptions options, std::vector<TaskSpec> tasks);

  GradientNeed needs() const override { return GradientNeed::kLosses; }
  /// Checks that the model has the tasks this strategy was built for.
  void attach(const StrategyContext& context) override;
  /// Objective Σ α_i L_i; weights α.
  StepOutput step(const StepInput& input) override;
  /// An absent task's loss is an exact zero: Σ a_i L_i already leaves it out.
  bool handlesAbsentTasks() const override { return true; }

  /// The weights applied at every step (after normalisation).
  const std::vector<double>& weights() const { return alpha_; }

 private:
  std::vector<TaskSpec> tasks_;
  std::vector<double> alpha_;
};

}  // namespace fulcrum
