// FairGrad: Ban, Ji, "Fair Resource Allocation in Multi-Task Learning",
// ICML 2024 (section 4, Algorithm 1), with details from the official code
// (github.com/OptMN-Lab/fairgrad, methods/weight_methods.py, class FairGrad).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"
#include "strategies/gram.h"

namespace fulcrum {

/// Options of `name: fairgrad`.
struct FairGradOptions {
  /// `alpha`: the α of α-fairness, in [0.01, 100]. Default 1.0, the official
  /// code's default (proportional fairness, Nash-MTL's weights); its
  /// released CelebA and QM9 scripts use 2.0. Larger α approaches max-min
  /// fairness (equal g_iᵀd), smaller α the plain sum of improvements.
  double alpha = 1.0;
  /// `max_iterations`: Newton iterations of the weight solver, ≥ 1. Default 100.
  int64_t maxIterations = 100;
  /// `max_norm`: d is scaled by max_norm/(‖d‖ + 1e-6) when that is below 1
  /// (the official scripts' clip_grad_norm_ of the shared gradient), ≥ 0;
  /// 0 turns it off. Default 1.0.
  double maxNorm = 1.0;
  /// `scale_by_tasks`: multiply d by T before clipping, as the official code
  /// does ("to match the sum loss"). Default false: d = Σ_i w_i g_i as in
  /// the paper.
  bool scaleByTasks = false;
  /// `head_weights`: one | w. Default one: each head gets its own task's
  /// unweighted gradient, as in the official code; w scales head i by w_i.
  bool weightsOnHeads = false;
  /// `gradients`: parameters | representation. Default parameters (the paper).
  detail::GradientSpace gradients = detail::GradientSpace::kParameters;
};

/// Reads and validates the options above.
FairGradOptions readFairGradOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// FairGrad: the update maximises the sum of the α-fair utilities of the
/// tasks' first-order loss decreases, Σ_i (g_iᵀd)^{1−α}/(1−α) (Σ log g_iᵀd
/// at α = 1) over a ball; its stationarity gives d = Σ_i w_i g_i with w > 0
/// solving
/// \f[ G G^\top w = w^{-1/\alpha} \quad\text{(elementwise)}, \f]
/// so that g_iᵀd = w_i^{−1/α}. α = 1 is Nash-MTL's system. w is found by
/// detail::solveFairWeights (damped Newton on a convex potential, in place of
/// the official scipy least_squares from w = 1/T; both find the unique root).
/// For orthogonal gradients w_i = ‖g_i‖^{−2α/(α+1)}.
///
/// Tasks whose gradient is zero (‖g_i‖² ≤ 1e-20 max_j ‖g_j‖²) cannot take
/// part (the system has no solution with them) and get w_i = 0; the others
/// are solved among themselves. If there is no solution (some positive
/// combination of the gradients is zero, e.g. opposed gradients: a Pareto-
/// stationary point) `solved` is 0 and w is what the official bounded least
/// squares returns, by detail::fairLeastSquares: the cancelling tasks' weights
/// grow large while their combination goes to about 0, so d is about the
/// fair direction of the other tasks (0 if every task cancels).
/// Diagnostics: solved, iterations (Newton, plus least squares without a
/// solution), residual (‖GGᵀw − w^{−1/α}‖/‖w^{−1/α}‖ over the tasks taking
/// part), norm (‖d‖ before clipping), then w_<task>.
/// Weights: 1, or w with head_weights: w.
class FairGrad final : public Strategy {
 public:
  FairGrad(FairGradOptions options, std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return detail::needOf(options_.gradients); }
  void attach(const StrategyContext& context) override;
  StepOutput step(const StepInput& input) override;
  /// "solved", "iterations", "residual", "norm", then "w_<task>" for every task.
  std::vector<std::string> diagnosticNames() const override;

 private:
  FairGradOptions options_;
  std::vector<TaskSpec> tasks_;
};

}  // namespace fulcrum
