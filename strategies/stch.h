// STCH, smooth Tchebycheff scalarization: Lin, Zhang, Yang, Liu, Wang, Zhang,
// "Smooth Tchebycheff Scalarization for Multi-Objective Optimization",
// ICML 2024.
#pragma once

#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum {

/// Options of `name: stch`.
struct StchOptions {
  /// `mu`: smoothing μ > 0. Default 1 (the paper's MTL setting). As μ → 0
  /// the objective tends to the classical Tchebycheff max_i; larger μ
  /// averages the tasks more evenly.
  double mu = 1.0;
  /// `warmup_epochs`: W >= 1 epochs of the warm-up objective Σ log L_i; the
  /// nadir is each task's mean training loss over epoch W − 1. Default 1.
  /// (LibMTL's `STCH_warmup_epoch` counts from 0: it equals W − 1.)
  int64_t warmupEpochs = 1;
  /// `nadir`: T given nadir values > 0 instead of a warm-up (then
  /// `warmup_epochs` may not be given). Default: empty (estimated).
  std::vector<double> nadir;
};

/// Reads and validates the options above.
StchOptions readStchOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// Smooth Tchebycheff scalarisation of the log-normalised losses. With the
/// nadir n (a scale per task) and u_i = log(L_i / n_i):
/// \f[ L = \mu \log \sum_i \exp(u_i/\mu),\qquad
///     \frac{\partial L}{\partial L_i} = \frac{p_i}{L_i},\quad p = \mathrm{softmax}(u/\mu) \f]
/// (the paper's preference λ = 1 and ideal point 0 after the log). Until the
/// nadir is known — the first `warmup_epochs` epochs, as in LibMTL's STCH —
/// the objective is \f$ \sum_i \log L_i \f$ (weights 1/L_i); at the end of
/// epoch W − 1 the nadir becomes that epoch's mean training losses.
/// Reported weights are ∂L/∂L_i; diagnostics "softmax_<task>" are p (NaN
/// during the warm-up). Every loss must be > 0.
class SmoothTchebycheff final : public Strategy {
 public:
  SmoothTchebycheff(StchOptions options, std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return GradientNeed::kLosses; }
  void attach(const StrategyContext& context) override;
  StepOutput step(const StepInput& input) override;
  /// Sets the nadir from the mean training losses of epoch W − 1.
  void onEpochEnd(const EpochStats& stats) override;
  std::vector<std::string> diagnosticNames() const override;
  /// "nadir": T entries, or 0 while it is not yet known.
  StrategyState state() const override;
  void loadState(const StrategyState& state) override;

  /// The nadir, or empty while warming up.
  const std::vector<double>& nadir() const { return nadir_; }

 private:
  StchOptions options_;
  std::vector<TaskSpec> tasks_;
  std::vector<double> nadir_;
};

}  // namespace fulcrum
