#include "strategies/symmetric_eigen.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace fulcrum::detail {

SymmetricEigen symmetricEigen(const Gram& m) {
  const int64_t n = m.n;
  if (n < 1 || m.m.size() != static_cast<std::size_t>(n * n)) {
    throw std::invalid_argument("symmetricEigen: expected a non-empty square matrix");
  }
  // a: working copy, symmetrised from the upper triangle; v: accumulated rotations.
  std::vector<double> a(m.m.size()), v(m.m.size(), 0.0);
  auto at = [n](std::vector<double>& x, int64_t i, int64_t j) -> double& {
    return x[static_cast<std::size_t>(i * n + j)];
  };
  double frobenius = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    at(v, i, i) = 1.0;
    for (int64_t j = 0; j < n; ++j) {
      const double x = i <= j ? m.at(i, j) : m.at(j, i);
      if (!std::isfinite(x)) throw std::invalid_argument("symmetricEigen: non-finite entry");
      at(a, i, j) = x;
      frobenius += x * x;
    }
  }
  const double threshold = 1e-30 * frobenius;  // (1e-15 ‖M‖_F)²
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = i + 1; j < n; ++j) off += 2.0 * at(a, i, j) * at(a, i, j);
    }
    if (off <= threshold) break;
    for (int64_t p = 0; p < n; ++p) {
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = at(a, p, q);
        if (apq == 0.0) continue;
        // The rotation that zeroes a_pq (Golub & Van Loan, Algorithm 8.4.1),
        // with the smaller root for t so that |θ| ≤ π/4.
        const double tau = (at(a, q, q) - at(a, p, p)) / (2.0 * apq);
        const double t = (tau >= 0.0 ? 1.0 : -1.0) / (std::abs(tau) + std::sqrt(1.0 + tau * tau));
        const double c = 1.0 / std::sqrt(1.0 + t * t);
        const double s = t * c;
        for (int64_t k = 0; k < n; ++k) {
          const double akp = at(a, k, p), akq = at(a, k, q);
          at(a, k, p) = c * akp - s * akq;
          at(a, k, q) = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {
          const double apk = at(a, p, k), aqk = at(a, q, k);
          at(a, p, k) = c * apk - s * aqk;
          at(a, q, k) = s * apk + c * aqk;
        }
        for (int64_t k = 0; k < n; ++k) {
          const double vkp = at(v, k, p), vkq = at(v, k, q);
          at(v, k, p) = c * vkp - s * vkq;
          at(v, k, q) = s * vkp + c * vkq;
        }
      }
    }
  }
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t x, int64_t y) { return at(a, x, x) > at(a, y, y); });
  SymmetricEigen out;
  out.n = n;
  out.values.resize(static_cast<std::size_t>(n));
  out.vectors.resize(static_cast<std::size_t>(n * n));
  for (int64_t k = 0; k < n; ++k) {
    const int64_t from = order[static_cast<std::size_t>(k)];
    out.values[static_cast<std::size_t>(k)] = at(a, from, from);
    for (int64_t i = 0; i < n; ++i)
      out.vectors[static_cast<std::size_t>(i * n + k)] = at(v, i, from);
  }
  return out;
}

Gram symmetricPseudoInverse(const Gram& m, double relativeTolerance) {
  const SymmetricEigen eig = symmetricEigen(m);
  const int64_t n = eig.n;
  double largest = 0.0;
  for (double value : eig.values) largest = std::max(largest, std::abs(value));
  Gram out;
  out.n = n;
  out.m.assign(static_cast<std::size_t>(n * n), 0.0);
  for (int64_t k = 0; k < n; ++k) {
    const double value = eig.values[static_cast<std::size_t>(k)];
    if (!(std::abs(value) > relativeTolerance * largest)) continue;
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) out.at(i, j) += eig.vector(i, k) * eig.vector(j, k) / value;
    }
  }
  return out;
}

}  // namespace fulcrum::detail
