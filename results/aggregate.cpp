#include "results/aggregate.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fulcrum::results {

const char* const kDeltaMDefinition =
    "Δm% = (1/K) Σ_k (−1)^s_k (M_k − M_b,k) / M_b,k × 100 over the K metrics shown, "
    "s_k = 1 where higher is better (accuracy), M_b the baseline; lower is better";
const char* const kDeltaMByTaskDefinition =
    "Δm% = (1/T) Σ_t (1/K_t) Σ_k (−1)^s_k (M_t,k − M_b,t,k) / M_b,t,k × 100 over the T tasks "
    "and each task's K_t metrics shown (LibMTL's: every task counts once, whatever its number "
    "of metrics), s_k = 1 where higher is better (accuracy), M_b the baseline; lower is better";

MeanStd meanStd(const std::vector<double>& values) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  MeanStd result;
  double sum = 0.0;
  for (double value : values) {
    if (!std::isfinite(value)) continue;
    sum += value;
    ++result.n;
  }
  if (result.n == 0) return {nan, nan, 0};
  result.mean = sum / static_cast<double>(result.n);
  if (result.n == 1) return result;
  double squares = 0.0;
  for (double value : values) {
    if (std::isfinite(value)) squares += (value - result.mean) * (value - result.mean);
  }
  result.std = std::sqrt(squares / static_cast<double>(result.n - 1));
  return result;
}

bool higherIsBetter(const std::string& metric) {
  // Only for files written before trial files recorded their metrics'
  // directions (attribute metric_directions, from framework/task.cpp's
  // table): the names those files can hold.
  return metric == "accuracy" || metric == "auc" || metric == "f1";
}

std::ptrdiff_t bestIndex(const std::vector<double>& validation, bool higherIsBetter) {
  std::ptrdiff_t best = -1;
  for (std::size_t i = 0; i < validation.size(); ++i) {
    const double value = validation[i];
    if (std::isnan(value)) continue;
    if (best < 0) {
      best = static_cast<std::ptrdiff_t>(i);
      continue;
    }
    const double current = validation[static_cast<std::size_t>(best)];
    if (higherIsBetter ? value > current : value < current) best = static_cast<std::ptrdiff_t>(i);
  }
  return best;
}

double deltaM(const std::vector<double>& values, const std::vector<double>& baseline,
              const std::vector<bool>& higherIsBetter) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::size_t k = values.size();
  if (k == 0 || baseline.size() != k || higherIsBetter.size() != k) return nan;
  double sum = 0.0;
  for (std::size_t i = 0; i < k; ++i) {
    if (!std::isfinite(values[i]) || !std::isfinite(baseline[i]) || baseline[i] == 0.0) return nan;
    const double relative = (values[i] - baseline[i]) / baseline[i];
    sum += higherIsBetter[i] ? -relative : relative;
  }
  return sum / static_cast<double>(k) * 100.0;
}

double deltaMByTask(const std::vector<double>& values, const std::vector<double>& baseline,
                    const std::vector<bool>& higherIsBetter,
                    const std::vector<std::string>& tasks) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::size_t k = values.size();
  if (k == 0 || baseline.size() != k || higherIsBetter.size() != k || tasks.size() != k) return nan;
  // Each task's entries, in the order the tasks first appear.
  std::vector<std::string> order;
  for (const std::string& task : tasks) {
    if (std::find(order.begin(), order.end(), task) == order.end()) order.push_back(task);
  }
  double sum = 0.0;
  for (const std::string& task : order) {
    std::vector<double> own, base;
    std::vector<bool> higher;
    for (std::size_t i = 0; i < k; ++i) {
      if (tasks[i] != task) continue;
      own.push_back(values[i]);
      base.push_back(baseline[i]);
      higher.push_back(higherIsBetter[i]);
    }
    sum += deltaM(own, base, higher);  // the task's mean, × 100; NaN spreads
  }
  return sum / static_cast<double>(order.size());
}

namespace {

/// The continued fraction of the incomplete beta function (modified Lentz).
double betaFraction(double a, double b, double x) {
  const double tiny = 1e-300;
  auto guarded = [tiny](double v) { return std::fabs(v) < tiny ? tiny : v; };
  double c = 1.0, d = 1.0 / guarded(1.0 - (a + b) * x / (a + 1.0));
  double h = d;
  // One Lentz update by the coefficient `aa`; returns the factor it multiplies h by.
  auto update = [&](double aa) {
    d = 1.0 / guarded(1.0 + aa * d);
    c = guarded(1.0 + aa / c);
    return d * c;
  };
  for (int m = 1; m <= 300; ++m) {
    const double m2 = 2.0 * m;
    h *= update(m * (b - m) * x / ((a + m2 - 1.0) * (a + m2)));
    const double step = update(-(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0)));
    h *= step;
    if (std::fabs(step - 1.0) < 1e-15) break;
  }
  return h;
}

/// The regularised incomplete beta function I_x(a, b).
double incompleteBeta(double a, double b, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) +
                                a * std::log(x) + b * std::log1p(-x));
  // The fraction converges fast for x < (a + 1)/(a + b + 2); else by symmetry.
  if (x < (a + 1.0) / (a + b + 2.0)) return front * betaFraction(a, b, x) / a;
  return 1.0 - front * betaFraction(b, a, 1.0 - x) / b;
}

}  // namespace

double studentTwoSidedP(double t, double df) {
  if (!(df > 0.0) || std::isnan(t)) return std::numeric_limits<double>::quiet_NaN();
  if (std::isinf(t)) return 0.0;
  return incompleteBeta(df / 2.0, 0.5, df / (df + t * t));
}

double pairedTTestP(const std::vector<double>& a, const std::vector<double>& b) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (a.size() != b.size()) return nan;
  std::vector<double> differences;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isfinite(a[i]) && std::isfinite(b[i])) differences.push_back(a[i] - b[i]);
  }
  if (differences.size() < 3) return nan;
  const MeanStd d = meanStd(differences);
  if (d.std == 0.0) return d.mean == 0.0 ? 1.0 : 0.0;
  const double n = static_cast<double>(differences.size());
  return studentTwoSidedP(d.mean / (d.std / std::sqrt(n)), n - 1.0);
}

std::vector<double> holmAdjusted(const std::vector<double>& p) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (std::isfinite(p[i])) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t x, std::size_t y) { return p[x] < p[y]; });
  std::vector<double> adjusted(p.size(), std::numeric_limits<double>::quiet_NaN());
  const double m = static_cast<double>(order.size());
  double running = 0.0;
  for (std::size_t j = 0; j < order.size(); ++j) {
    running = std::max(running, std::min(1.0, (m - static_cast<double>(j)) * p[order[j]]));
    adjusted[order[j]] = running;
  }
  return adjusted;
}

std::vector<int> ranks(const std::vector<double>& values) {
  std::vector<int> result(values.size(), 0);
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) continue;
    int better = 0;
    for (double other : values) {
      if (std::isfinite(other) && other < values[i]) ++better;
    }
    result[i] = better + 1;
  }
  return result;
}

}  // namespace fulcrum::results
