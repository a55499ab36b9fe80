// The min-norm point of the convex hull of T vectors, given their Gram
// matrix: the solver of MGDA (Sener & Koltun, "Multi-Task Learning as
// Multi-Objective Optimization", NeurIPS 2018, section 3.1 and Algorithm 2).
//
//   min_{α ∈ Δ_T} ‖Σ_i α_i g_i‖²  =  min_{α ∈ Δ_T} αᵀ M α,   M = G Gᵀ.
#pragma once

#include <cstdint>
#include <vector>

#include "strategies/gram.h"

namespace fulcrum::detail {

/// A point of the simplex and the iterations that found it.
struct SimplexSolution {
  std::vector<double> weights;  ///< α, non-negative, summing to 1
  int64_t iterations = 0;       ///< solver iterations (0 for a closed form)
};

/// The two-vector case in closed form (the paper's Algorithm 1):
/// γ* = argmin_{γ∈[0,1]} ‖γ v₁ + (1−γ) v₂‖² from v₁·v₁, v₁·v₂, v₂·v₂,
/// \f[ γ^* = \mathrm{clip}_{[0,1]}\left( \frac{(v_2 - v_1)\cdot v_2}{\|v_1 - v_2\|^2} \right) \f]
/// (γ* = 1 when v₁ = v₂). Returns γ*, the weight of v₁.
double minNormPair(double v1v1, double v1v2, double v2v2);

/// The min-norm element of the convex hull of the vectors whose Gram matrix
/// is `gram`. T = 1: α = (1); T = 2: the closed form above; T > 2:
/// Frank-Wolfe from α = 1/T (the paper's Algorithm 2): each iteration moves
/// towards the vertex e_t with the smallest (M α)_t by the exact line search
/// minNormPair, and stops when Σ|Δα| < `tolerance` or after `maxIterations`.
SimplexSolution minNormElement(const Gram& gram, int64_t maxIterations = 250,
                               double tolerance = 1e-5);

}  // namespace fulcrum::detail
