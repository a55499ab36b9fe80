// A small quadratic program with lower bounds, the projection problem of
// UPGrad (Quinton & Rey, "Jacobian Descent for Multi-Objective
// Optimization", 2024, Proposition 1):
//
//   min_λ  λᵀ M λ   subject to   λ ≥ u   (componentwise),
//
// for a symmetric positive semi-definite T×T matrix M (the Gram matrix of the
// task gradients) and a bound u. Then Gᵀλ is the projection of Gᵀu onto the
// dual cone {v : G v ≥ 0} of the rows of G. Internal to strategies/.
#pragma once

#include <cstdint>
#include <vector>

#include "strategies/gram.h"

namespace fulcrum::detail {

/// A solution of the lower-bounded QP and the work it took.
struct BoxQpSolution {
  std::vector<double> lambda;  ///< λ ≥ u
  int64_t iterations = 0;      ///< active-set changes
  bool converged = false;      ///< KKT conditions met within the tolerance
};

/// Solves the QP above by a primal active-set method from λ = u (every
/// bound active): each iteration minimises over the free coordinates with
/// the active ones held at their bounds (a pseudo-inverse step, so a
/// singular M is fine), walks towards that point until a bound blocks, and
/// frees the active bound with the most negative multiplier (M λ)_i when the
/// step is zero. Exact, up to rounding, after finitely many iterations for a
/// positive definite M (T = 2 takes at most two). Stops after
/// `maxIterations` with the last feasible λ (converged = false).
/// `tolerance` is relative to max_i M_ii. Throws std::invalid_argument if the
/// sizes disagree or an entry is not finite.
BoxQpSolution solveLowerBoundedQp(const Gram& m, const std::vector<double>& u,
                                  int64_t maxIterations = 1000, double tolerance = 1e-12);

}  // namespace fulcrum::detail
