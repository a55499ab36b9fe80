// Nash-MTL: Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik, Fetaya,
// "Multi-Task Learning as a Bargaining Game", ICML 2022 (section 3, Algorithm
// 1), following the official code (github.com/AvivNavon/nash-mtl,
// methods/weight_methods.py, class NashMTL) where it adds details.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"
#include "strategies/gram.h"

namespace fulcrum {

/// Options of `name: nash_mtl`.
struct NashMtlOptions {
  /// `update_weights_every`: solve for α every k-th step and reuse the last α
  /// in between, ≥ 1. Default 1 (the paper's main results).
  int64_t updateWeightsEvery = 1;
  /// `optim_niter`: at most this many convex problems of the concave-convex
  /// procedure per solve, ≥ 1. Default 20.
  int64_t optimNiter = 20;
  /// `max_norm`: the combined direction d is scaled by max_norm/(‖d‖ + 1e-6)
  /// when that is below 1 (torch's clip_grad_norm_), ≥ 0; 0 turns it off.
  /// Default 1.0.
  double maxNorm = 1.0;
  /// `gradients`: parameters | representation. Default parameters (the paper).
  detail::GradientSpace gradients = detail::GradientSpace::kParameters;
};

/// Reads and validates the options above.
NashMtlOptions readNashMtlOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// Nash-MTL: the update is the Nash bargaining solution of the tasks over
/// directions in a ball, d = Σ_i α_i g_i with α > 0 solving
/// \f[ G G^\top \alpha = 1/\alpha \quad\text{(elementwise)}, \f]
/// i.e. g_iᵀd = 1/α_i for every task. α is found by the paper's sequence of
/// convex problems (detail::solveNashMtl), in the form the official code
/// writes them: at most `optim_niter` steps, each
/// \f[ \min_\alpha \; 1^\top G G^\top \alpha + \nabla\phi(\alpha_k)^\top \alpha
///     \;\;\text{s.t.}\;\; \log\alpha_i + \log (G G^\top\alpha)_i \ge 0, \f]
/// φ(α) = Σ_i log α_i + log (GGᵀα)_i, warm-started from the previous solve's α
/// (α = 1 at the first) and stopped early as the official code does. The
/// official code solves each problem with cvxpy/ECOS; fulcrum's own solver
/// replaces it (same problem, same iterates to solver accuracy). The solution
/// is usually the vertex of the feasible set where all constraints are
/// active, i.e. the Nash point GGᵀα = 1/α itself: detail::solveNashSubproblem
/// takes it from one Newton solve when the KKT conditions hold there and runs
/// a log-barrier Newton method otherwise. So one problem usually lands on the
/// solution and the next passes the stop test.
///
/// Details from the official code, reproduced: the Gram matrix is divided by
/// its Frobenius norm before solving (α itself is for the raw GGᵀ); the loss
/// Σ_i α_i L_i gives each head α_i ∂L_i/∂φ_i (weights = α); with
/// update_weights_every = k, steps 0, k, 2k, … (counted by the strategy)
/// solve and the others reuse α; when a solve fails (no α > 0 has GGᵀα > 0,
/// e.g. opposed or zero gradients) α keeps its previous value. The official
/// training scripts clip the shared parameters' gradient norm to max_norm
/// after the backward pass; here that is the scaling of d by `max_norm`
/// (on the representation gradient when `gradients: representation`, which
/// the official code does not offer).
///
/// Deviations: the official stop tests compare the raw α against the
/// normalised Gram matrix (‖GGᵀα/‖GGᵀ‖_F − 1/α‖ < 1e-3, ‖Δα‖ < 1e-6), which
/// makes them depend on the gradients' scale; they are applied here to the
/// normalised problem's solution √‖GGᵀ‖_F α (identical when ‖GGᵀ‖_F = 1). A
/// warm start with some (GGᵀα)_i ≤ 0 (outside φ's domain) is replaced by the
/// exact solution (see detail::solveNashMtl) instead of being linearised.
/// Fulcrum's trainer has no global gradient clip, so a reusing step with
/// max_norm > 0 still asks for the task gradients (to measure ‖d‖); with
/// max_norm = 0 it returns the objective Σ_i α_i L_i and needs no per-task
/// gradients, as in the official code.
///
/// Diagnostics: updated (1 if α was solved for this step), solved (1 if that
/// solve succeeded), iterations (convex problems solved), residual
/// (‖GGᵀα − 1/α‖/‖1/α‖ after the solve) and norm (‖d‖ before clipping); all 0
/// where the step did not compute them.
class NashMtl final : public Strategy {
 public:
  NashMtl(NashMtlOptions options, std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return detail::needOf(options_.gradients); }
  void attach(const StrategyContext& context) override;
  StepOutput step(const StepInput& input) override;
  /// "updated", "solved", "iterations", "residual", "norm".
  std::vector<std::string> diagnosticNames() const override;
  /// "alpha": the last α (T); "step": steps taken (0-dim int64).
  StrategyState state() const override;
  void loadState(const StrategyState& state) override;

  /// The α the next reusing step would apply (1 before the first solve).
  const std::vector<double>& alpha() const { return alpha_; }

 private:
  NashMtlOptions options_;
  std::vector<TaskSpec> tasks_;
  std::vector<double> alpha_;
  int64_t steps_ = 0;
};

}  // namespace fulcrum
