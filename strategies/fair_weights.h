// Positive task weights w with M w = w^{−1/α} for a Gram matrix M = G Gᵀ:
// the α-fair allocations behind Nash-MTL (α = 1, the Nash bargaining
// solution M w = 1/w) and FairGrad (any α > 0). Both papers' systems are the
// stationarity condition of one strictly convex function on w > 0,
//
//   F_α(w) = ½ wᵀ M w − Σ_i h_α(w_i),   h_α'(w) = w^{−1/α}
//   (h_1 = log w;  h_α = w^{1−1/α} / (1 − 1/α) otherwise),
//
// so a solution exists, and is unique, exactly when F_α is bounded below on
// w > 0 (e.g. for linearly independent gradients); it does not exist when
// some non-zero v ≥ 0 has M v = 0 (opposed gradients, a zero gradient).
// Everything here is T-dimensional work in double on the host.
#pragma once

#include <cstdint>
#include <vector>

#include "strategies/gram.h"

namespace fulcrum::detail {

/// Weights from one of the solvers below.
struct FairWeights {
  std::vector<double> weights;  ///< w (or α), positive
  int64_t iterations = 0;       ///< Newton iterations, or CCP steps for solveNashMtl
  bool solved = false;          ///< false: no solution was found and `weights` is the fallback
};

/// ‖M w − w^{−1/α}‖ / ‖w^{−1/α}‖: the relative residual of the α-fair
/// system (scale-free: it does not change when M is scaled and w with it).
double fairResidual(const Gram& gram, double alpha, const std::vector<double>& w);

/// The w > 0 with M w = w^{−1/α} (α > 0), by damped Newton on F_α with an
/// Armijo line search that keeps w > 0, on M / ‖M‖_F from the orthogonal
/// case's solution w_i = M_ii^{−α/(α+1)} (the official code starts its least
/// squares from w = 1/T; the solution is unique), rescaled to M at the end. Stops when
/// fairResidual < `tolerance` or after `maxIterations`; `solved` is false
/// (weights then 1/T) when ‖M‖_F = 0, when the iterates run off to infinity
/// (no solution) or when the residual is still above 1e-6 at the end.
FairWeights solveFairWeights(const Gram& gram, double alpha, int64_t maxIterations = 100,
                             double tolerance = 1e-12);

/// The official FairGrad solver's answer where the system has no solution:
/// a local minimiser of ½‖M w − w^{−1/α}‖² over w > 0 from w = 1/T, as the
/// authors' scipy `least_squares(…, bounds=(0, inf))` finds it, here by a
/// projected Levenberg–Marquardt method on the unscaled M with scipy's
/// default stopping rules (gtol: ‖v ∘ Jᵀr‖_∞ < 1e-8 with scipy's bound
/// scaling v_i = w_i where the gradient pushes w_i down and 1 otherwise;
/// ftol and xtol 1e-8; at most 100·T iterations, its max_nfev). Without a
/// root the residual only falls along a ray on which M w → 0, so the weights
/// of the tasks that cancel grow while Σ_i w_i g_i shrinks to about 0; tasks
/// outside the cancelling group keep finite weights. Where along that ray it
/// stops differs from scipy's trust-region solver: (469, 469) for two opposed
/// unit gradients at α = 1 where scipy stops at (512, 512), (2.1e4, 1.1e4) at the iteration
/// limit for (1, 0) and (−2, 0) where scipy stops at (974, 487), so
/// d = (−3e-5, 0) here and (−6e-4, 0) there. With a root it
/// converges to the root (the residual's only stationary point in w > 0),
/// but solveFairWeights finds that faster and exactly. `solved` is false.
FairWeights fairLeastSquares(const Gram& gram, double alpha);

/// One convex problem of Nash-MTL's concave-convex procedure,
/// \f[ \min_\alpha c^\top \alpha \quad \text{s.t.} \quad
///     \psi_i(\alpha) = \log \alpha_i + \log (M\alpha)_i \ge 0 \;\; \forall i, \f]
/// from the strictly feasible `start` (α > 0, α_i (Mα)_i > 1): the vertex
/// where every constraint is active when nashVertex accepts it (the usual
/// case: the CCP's minimiser is the Nash point), otherwise
/// solveNashSubproblemByBarrier. The two agree to the barrier method's
/// accuracy. Returns an empty vector if `start` is not strictly feasible or
/// the problem is unbounded below.
std::vector<double> solveNashSubproblem(const Gram& gram, const std::vector<double>& c,
                                        const std::vector<double>& start);

/// The vertex of the problem above where every constraint is active: the
/// Nash point α* (M α* = 1/α*, by solveFairWeights with α = 1), if it is the
/// minimiser, i.e. if c = Σ_i λ_i ∇ψ_i(α*) with every λ_i > 0 (KKT; the
/// problem is convex). Empty if there is no Nash point or some λ_i ≤ 0.
std::vector<double> nashVertex(const Gram& gram, const std::vector<double>& c);

/// The problem above by a log-barrier Newton method from `start` (barrier
/// parameter t = 1, 20, 400, … on the unit c until T/t < 1e-11), whatever
/// the minimiser. Empty if `start` is not strictly feasible or the problem
/// is unbounded below.
std::vector<double> solveNashSubproblemByBarrier(const Gram& gram, const std::vector<double>& c,
                                                 const std::vector<double>& start);

/// Nash-MTL's weights α (M α = 1/α) by the paper's concave-convex procedure,
/// as its official code runs it: with M̃ = M/‖M‖_F and φ(α) = Σ_i log α_i +
/// log (M̃α)_i, step k solves
/// \f[ \alpha_{k+1} = \arg\min_\alpha \; 1^\top M\alpha + \nabla\phi(\alpha_k)^\top \alpha
///     \quad \text{s.t.} \quad \log\alpha_i + \log (M\alpha)_i \ge 0 \f]
/// from α_0 = `start`, for at most `maxSteps` steps, stopping early (and
/// returning α_k) when ‖M̃ α̃_k − 1/(α̃_k + 1e-10)‖ < 1e-3 or ‖α̃_{k+1} − α̃_k‖ < 1e-6,
/// with α̃ = √‖M‖_F · α the solution's scale-free form. If the first problem
/// cannot be solved (no α with Mα > 0: opposed or zero gradients) `start` is
/// returned with `solved` false; a later failure returns the last α_k.
FairWeights solveNashMtl(const Gram& gram, const std::vector<double>& start, int64_t maxSteps = 20);

}  // namespace fulcrum::detail
