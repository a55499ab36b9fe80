#include "strategies/min_norm.h"

#include <cmath>
#include <stdexcept>

namespace fulcrum::detail {

double minNormPair(double v1v1, double v1v2, double v2v2) {
  // The original code uses 0.999 and 0.001 at the two ends; the exact clip is
  // the minimiser of the quadratic.
  if (v1v2 >= v1v1) return 1.0;
  if (v1v2 >= v2v2) return 0.0;
  return (v2v2 - v1v2) / (v1v1 + v2v2 - 2.0 * v1v2);
}

SimplexSolution minNormElement(const Gram& gram, int64_t maxIterations, double tolerance) {
  const int64_t n = gram.n;
  if (n < 1) throw std::invalid_argument("minNormElement: no vectors");
  SimplexSolution out;
  if (n == 1) {
    out.weights = {1.0};
    return out;
  }
  if (n == 2) {
    const double gamma = minNormPair(gram.at(0, 0), gram.at(0, 1), gram.at(1, 1));
    out.weights = {gamma, 1.0 - gamma};
    return out;
  }
  std::vector<double> alpha(static_cast<std::size_t>(n), 1.0 / static_cast<double>(n));
  std::vector<double> mAlpha(static_cast<std::size_t>(n));
  for (int64_t it = 0; it < maxIterations; ++it) {
    for (int64_t i = 0; i < n; ++i) {
      double s = 0.0;
      for (int64_t j = 0; j < n; ++j) s += gram.at(i, j) * alpha[static_cast<std::size_t>(j)];
      mAlpha[static_cast<std::size_t>(i)] = s;
    }
    int64_t vertex = 0;
    for (int64_t i = 1; i < n; ++i) {
      if (mAlpha[static_cast<std::size_t>(i)] < mAlpha[static_cast<std::size_t>(vertex)]) vertex = i;
    }
    double aMa = 0.0;
    for (int64_t i = 0; i < n; ++i) aMa += alpha[static_cast<std::size_t>(i)] * mAlpha[static_cast<std::size_t>(i)];
    // Line search between the current point (v₁ = Gᵀα) and the vertex (v₂ = g_t).
    const double gamma = minNormPair(aMa, mAlpha[static_cast<std::size_t>(vertex)], gram.at(vertex, vertex));
    double change = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      auto& a = alpha[static_cast<std::size_t>(i)];
      const double next = gamma * a + (i == vertex ? 1.0 - gamma : 0.0);
      change += std::abs(next - a);
      a = next;
    }
    out.iterations = it + 1;
    if (change < tolerance) break;
  }
  out.weights = alpha;
  return out;
}

}  // namespace fulcrum::detail
