#include "strategies/cagrad_dual.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>

namespace fulcrum::detail {
namespace {

struct DualTerms {
  std::vector<double> b;  // M 1 / T: the gradient of g_wᵀ g₀
  double root = 0.0;      // √φ = c ‖g₀‖
};

DualTerms termsOf(const Gram& gram, double c) {
  const auto n = static_cast<std::size_t>(gram.n);
  DualTerms t;
  t.b.assign(n, 0.0);
  double total = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) t.b[i] += gram.m[i * n + j];
    total += t.b[i];
    t.b[i] /= static_cast<double>(n);
  }
  t.root = c * std::sqrt(std::max(total, 0.0)) / static_cast<double>(n);
  return t;
}

std::vector<double> times(const Gram& gram, const std::vector<double>& w) {
  const auto n = static_cast<std::size_t>(gram.n);
  std::vector<double> out(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) out[i] += gram.m[i * n + j] * w[j];
  }
  return out;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

double objective(const Gram& gram, const DualTerms& t, const std::vector<double>& w) {
  return dot(t.b, w) + t.root * std::sqrt(std::max(dot(w, times(gram, w)), 0.0));
}

}  // namespace

std::vector<double> projectOntoSimplex(const std::vector<double>& v) {
  if (v.empty()) throw std::invalid_argument("projectOntoSimplex: empty vector");
  std::vector<double> sorted = v;
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  double cumulative = 0.0, theta = 0.0;
  for (std::size_t j = 0; j < sorted.size(); ++j) {
    cumulative += sorted[j];
    const double candidate = (cumulative - 1.0) / static_cast<double>(j + 1);
    if (sorted[j] - candidate > 0.0) theta = candidate;
  }
  std::vector<double> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = std::max(v[i] - theta, 0.0);
  return out;
}

double cagradDualObjective(const Gram& gram, double c, const std::vector<double>& w) {
  return objective(gram, termsOf(gram, c), w);
}

SimplexSolution solveCagradDual(const Gram& gram, double c, int64_t maxIterations,
                                double tolerance) {
  const auto n = static_cast<std::size_t>(gram.n);
  if (n < 1) throw std::invalid_argument("solveCagradDual: no vectors");
  if (!(c >= 0.0)) throw std::invalid_argument("solveCagradDual: c must be >= 0");
  const DualTerms t = termsOf(gram, c);
  SimplexSolution out;
  std::vector<double> w(n, 1.0 / static_cast<double>(n));
  double trace = 0.0;
  for (std::size_t i = 0; i < n; ++i) trace += gram.m[i * n + i];
  if (n == 1 || trace <= 0.0) {
    out.weights = w;
    return out;
  }
  // The smooth part's curvature is at most about trace(M); start there and
  // let the backtracking adapt (the √ term is only locally smooth).
  double step = 1.0 / trace;
  double f = objective(gram, t, w);
  for (int64_t it = 0; it < maxIterations; ++it) {
    const std::vector<double> mw = times(gram, w);
    // ‖g_w‖ = 0 only when 0 is in the hull; the floor keeps a subgradient.
    const double norm = std::sqrt(std::max(dot(w, mw), 1e-300));
    std::vector<double> grad(n);
    for (std::size_t i = 0; i < n; ++i) grad[i] = t.b[i] + t.root * mw[i] / norm;
    std::vector<double> next, trial(n);
    double fNext = 0.0;
    for (int backtrack = 0; backtrack < 60; ++backtrack) {
      for (std::size_t i = 0; i < n; ++i) trial[i] = w[i] - step * grad[i];
      next = projectOntoSimplex(trial);
      fNext = objective(gram, t, next);
      double linear = 0.0, squared = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        linear += grad[i] * (next[i] - w[i]);
        squared += (next[i] - w[i]) * (next[i] - w[i]);
      }
      if (fNext <= f + linear + squared / (2.0 * step) + 1e-15 * std::abs(f)) break;
      step *= 0.5;
    }
    double change = 0.0;
    for (std::size_t i = 0; i < n; ++i) change += std::abs(next[i] - w[i]);
    out.iterations = it + 1;
    // A step the sufficient-decrease test accepts without lowering F moves w
    // by less than rounding can see in F: w is the minimiser to machine
    // precision. Going on would only shuttle w between equal values of F.
    if (!(fNext < f)) break;
    w = next;
    f = fNext;
    if (change < tolerance) break;
    step *= 2.0;
  }
  out.weights = w;
  return out;
}

}  // namespace fulcrum::detail
