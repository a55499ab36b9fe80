// The dual problem of CAGrad (Liu, Liu, Jin, Stone, Liu, "Conflict-Averse
// Gradient Descent for Multi-task Learning", NeurIPS 2021, section 3.1):
//
//   min_{w ∈ Δ_T} F(w) = g_wᵀ g₀ + √φ ‖g_w‖,   g_w = Σ_i w_i g_i,
//   g₀ = (1/T) Σ_i g_i,   φ = c² ‖g₀‖²,
//
// written with the Gram matrix M = G Gᵀ: g_wᵀg₀ = wᵀM1/T, ‖g_w‖² = wᵀMw,
// ‖g₀‖² = 1ᵀM1/T². F is convex; it is solved by projected gradient descent
// on the simplex with a backtracking step (no external solver).
#pragma once

#include <cstdint>

#include "strategies/gram.h"
#include "strategies/min_norm.h"

namespace fulcrum::detail {

/// The minimiser w* of F above for the vectors with Gram matrix `gram` and
/// radius scale `c` ≥ 0. Stops when an accepted step changes w by less than
/// `tolerance` (ℓ1), when F stops decreasing (machine precision), or after
/// `maxIterations`. Starts from w = 1/T.
SimplexSolution solveCagradDual(const Gram& gram, double c, int64_t maxIterations = 1000,
                                double tolerance = 1e-10);

/// F(w) itself, for tests and diagnostics.
double cagradDualObjective(const Gram& gram, double c, const std::vector<double>& w);

/// The Euclidean projection of `v` onto the probability simplex (sort-based:
/// w = max(v − θ, 0) with θ chosen so that Σ w = 1).
std::vector<double> projectOntoSimplex(const std::vector<double>& v);

}  // namespace fulcrum::detail
