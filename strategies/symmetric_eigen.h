// The eigendecomposition of a small symmetric matrix (T×T, on the host, in
// double) by the cyclic Jacobi method, and the pseudo-inverse built from it.
// Used by Aligned-MTL (the eigenbasis of G Gᵀ) and by the box-constrained QP
// of UPGrad. Internal to strategies/.
#pragma once

#include <cstdint>
#include <vector>

#include "strategies/gram.h"

namespace fulcrum::detail {

/// M = V diag(values) Vᵀ, eigenvalues in descending order.
struct SymmetricEigen {
  int64_t n = 0;
  std::vector<double> values;   ///< λ_1 ≥ … ≥ λ_n
  std::vector<double> vectors;  ///< row-major n×n; column k (vectors[i*n + k]) is v_k, unit length
  double vector(int64_t i, int64_t k) const { return vectors[static_cast<std::size_t>(i * n + k)]; }
};

/// The eigendecomposition of the symmetric matrix `m` (only its upper
/// triangle is read). Cyclic Jacobi rotations until the off-diagonal mass is
/// below 1e-15 of the Frobenius norm (at most 100 sweeps): accurate to a few
/// ulps of ‖M‖ for the small T of multi-task learning. Throws
/// std::invalid_argument for an empty or non-finite matrix.
SymmetricEigen symmetricEigen(const Gram& m);

/// The Moore-Penrose pseudo-inverse of the symmetric matrix `m`: eigenvalues
/// with |λ| ≤ `relativeTolerance`·max|λ| count as zero.
Gram symmetricPseudoInverse(const Gram& m, double relativeTolerance = 1e-12);

}  // namespace fulcrum::detail
