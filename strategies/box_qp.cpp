#include "strategies/box_qp.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "strategies/symmetric_eigen.h"

namespace fulcrum::detail {

BoxQpSolution solveLowerBoundedQp(const Gram& m, const std::vector<double>& u,
                                  int64_t maxIterations, double tolerance) {
  const int64_t n = m.n;
  if (n < 1 || u.size() != static_cast<std::size_t>(n) ||
      m.m.size() != static_cast<std::size_t>(n * n)) {
    throw std::invalid_argument("solveLowerBoundedQp: the matrix and the bound disagree in size");
  }
  double scale = 0.0;
  for (int64_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(m.at(i, i)));
  for (double x : m.m) {
    if (!std::isfinite(x))
      throw std::invalid_argument("solveLowerBoundedQp: non-finite matrix entry");
  }
  for (double x : u) {
    if (!std::isfinite(x)) throw std::invalid_argument("solveLowerBoundedQp: non-finite bound");
  }
  const auto k = [](int64_t i) { return static_cast<std::size_t>(i); };
  BoxQpSolution out;
  out.lambda = u;
  std::vector<double>& x = out.lambda;
  // The zero matrix: every feasible λ is optimal, λ = u included.
  if (!(scale > 0.0)) {
    out.converged = true;
    return out;
  }
  const double tol = tolerance * scale;
  std::vector<char> active(k(n), 1);
  auto gradient = [&] {  // M λ (half the objective's gradient)
    std::vector<double> g(k(n), 0.0);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) g[k(i)] += m.at(i, j) * x[k(j)];
    }
    return g;
  };
  for (int64_t it = 0; it < maxIterations; ++it) {
    std::vector<int64_t> freeSet;
    for (int64_t i = 0; i < n; ++i) {
      if (!active[k(i)]) freeSet.push_back(i);
    }
    const std::vector<double> g = gradient();
    // Newton step on the free coordinates: p_F = −M_FF⁺ (M λ)_F, the
    // minimum-norm minimiser of the quadratic restricted to them.
    std::vector<double> p(k(n), 0.0);
    if (!freeSet.empty()) {
      Gram sub;
      sub.n = static_cast<int64_t>(freeSet.size());
      for (int64_t a : freeSet) {
        for (int64_t b : freeSet) sub.m.push_back(m.at(a, b));
      }
      const Gram inverse = symmetricPseudoInverse(sub);
      for (std::size_t a = 0; a < freeSet.size(); ++a) {
        for (std::size_t b = 0; b < freeSet.size(); ++b) {
          p[k(freeSet[a])] -= inverse.m[a * freeSet.size() + b] * g[k(freeSet[b])];
        }
      }
    }
    double stepNorm = 0.0;
    for (double pi : p) stepNorm = std::max(stepNorm, std::abs(pi));
    double magnitude = 1.0;
    for (double xi : x) magnitude = std::max(magnitude, std::abs(xi));
    if (stepNorm <= 1e-12 * magnitude) {
      // At the minimiser of the current face: optimal unless some active
      // bound has a negative multiplier (M λ)_i, which is then released.
      int64_t release = -1;
      double most = -tol;
      for (int64_t i = 0; i < n; ++i) {
        if (active[k(i)] && g[k(i)] < most) {
          most = g[k(i)];
          release = i;
        }
      }
      if (release < 0) {
        out.converged = true;
        return out;
      }
      active[k(release)] = 0;
      out.iterations = it + 1;
      continue;
    }
    // Walk towards the face's minimiser until the first bound blocks.
    double alpha = 1.0;
    int64_t blocking = -1;
    for (int64_t i : freeSet) {
      if (p[k(i)] < 0.0) {
        const double room = (u[k(i)] - x[k(i)]) / p[k(i)];
        if (room < alpha) {
          alpha = std::max(room, 0.0);
          blocking = i;
        }
      }
    }
    for (int64_t i : freeSet) x[k(i)] += alpha * p[k(i)];
    if (blocking >= 0) {
      x[k(blocking)] = u[k(blocking)];
      active[k(blocking)] = 1;
    }
    out.iterations = it + 1;
  }
  return out;
}

}  // namespace fulcrum::detail
