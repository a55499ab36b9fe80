// Uncertainty weighting: Kendall, Gal, Cipolla, "Multi-Task Learning Using
// Uncertainty to Weigh Losses for Scene Geometry and Semantics", CVPR 2018.
#pragma once

#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum {

/// How each task's term is formed.
enum class UncertaintyForm {
  /// The paper's likelihoods: c_i = ½ for regression (Gaussian), c_i = 1 for
  /// classification and binary tasks (softmax / sigmoid with temperature σ²).
  kExact,
  /// c_i = ½ for every task, as the popular Python implementations do.
  kRegression,
};

/// Options of `name: uncertainty`.
struct UncertaintyOptions {
  /// `init_log_variance`: initial s_i = log σ_i² for every task, in [-30, 30].
  /// Default 0 (the paper's setting; LibMTL uses -0.5).
  double initLogVariance = 0.0;
  /// `form`: `exact` (default) or `regression`; see UncertaintyForm.
  UncertaintyForm form = UncertaintyForm::kExact;
};

/// Reads and validates `init_log_variance` and `form` (ConfigError on a bad value).
UncertaintyOptions readUncertaintyOptions(const ConfigNode& options,
                                          const std::vector<TaskSpec>& tasks);

/// Uncertainty weighting. Learns s_i = log σ_i² jointly with the model:
/// \f[ L = \sum_i \left( c_i e^{-s_i} L_i + \tfrac12 s_i \right) \f]
/// with c_i from UncertaintyForm. The s_i are parameters() for the model's
/// optimizer (to be excluded from weight decay); the logged weight of task i
/// is its effective weight c_i e^{-s_i}. Needs the losses only.
class UncertaintyWeighting final : public Strategy {
 public:
  UncertaintyWeighting(UncertaintyOptions options, std::vector<TaskSpec> tasks);

  GradientNeed needs() const override { return GradientNeed::kLosses; }
  /// Creates s (T, requires grad) on the model's device and dtype.
  void attach(const StrategyContext& context) override;
  /// {s}; valid after attach() (std::logic_error before). The tensor is kept
  /// for the strategy's lifetime: loadState() writes into it.
  std::vector<torch::Tensor> parameters() override;
  /// Objective as above; weights c_i e^{-s_i} (detached).
  StepOutput step(const StepInput& input) override;
  /// An absent task's whole term (loss and ½s_i) is left out, so s_i is not updated.
  bool handlesAbsentTasks() const override { return true; }
  /// {"log_variance": s} (T, float64, CPU).
  StrategyState state() const override;
  /// Copies "log_variance" into s in place, so the optimizer keeps its reference.
  void loadState(const StrategyState& state) override;

  /// c_i per task.
  const std::vector<double>& coefficients() const { return c_; }
  /// s (T) as doubles; valid after attach().
  std::vector<double> logVariances() const;

 private:
  void requireAttached(const char* what) const;

  UncertaintyOptions options_;
  std::vector<TaskSpec> tasks_;
  std::vector<double> c_;
  torch::Tensor logVariance_;  // s, undefined until attach()
};

}  // namespace fulcrum
