#include "strategies/fair_weights.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace fulcrum::detail {
namespace {

using Vector = std::vector<double>;

Vector times(const Gram& gram, const Vector& x) {
  const auto n = static_cast<std::size_t>(gram.n);
  Vector out(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) out[i] += gram.m[i * n + j] * x[j];
  }
  return out;
}

double norm(const Vector& x) {
  double s = 0.0;
  for (double v : x) s += v * v;
  return std::sqrt(s);
}

double dot(const Vector& a, const Vector& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

Gram scaled(const Gram& gram, double factor) {
  Gram out = gram;
  for (double& v : out.m) v *= factor;
  return out;
}

/// x with A x = b for a small dense A (row-major, n×n) by Gaussian
/// elimination with partial pivoting; empty if A is singular to working precision.
Vector solveLinear(Vector a, Vector b) {
  const std::size_t n = b.size();
  for (std::size_t col = 0; col < n; ++col) {
    std::size_t pivot = col;
    for (std::size_t r = col + 1; r < n; ++r) {
      if (std::abs(a[r * n + col]) > std::abs(a[pivot * n + col])) pivot = r;
    }
    if (!(std::abs(a[pivot * n + col]) > 0.0)) return {};
    if (pivot != col) {
      for (std::size_t k = 0; k < n; ++k) std::swap(a[col * n + k], a[pivot * n + k]);
      std::swap(b[col], b[pivot]);
    }
    for (std::size_t r = col + 1; r < n; ++r) {
      const double factor = a[r * n + col] / a[col * n + col];
      if (factor == 0.0) continue;
      for (std::size_t k = col; k < n; ++k) a[r * n + k] -= factor * a[col * n + k];
      b[r] -= factor * b[col];
    }
  }
  Vector x(n, 0.0);
  for (std::size_t r = n; r-- > 0;) {
    double s = b[r];
    for (std::size_t k = r + 1; k < n; ++k) s -= a[r * n + k] * x[k];
    x[r] = s / a[r * n + r];
  }
  for (double v : x) {
    if (!std::isfinite(v)) return {};
  }
  return x;
}

void checkGram(const Gram& gram, const char* solver) {
  if (gram.n < 1 || gram.m.size() != static_cast<std::size_t>(gram.n * gram.n)) {
    throw std::invalid_argument(std::string(solver) + ": expected a non-empty square Gram matrix");
  }
  for (double v : gram.m) {
    if (!std::isfinite(v))
      throw std::invalid_argument(std::string(solver) + ": non-finite Gram matrix");
  }
}

double frobenius(const Gram& gram) { return norm(gram.m); }

/// h_α(w) with h_α'(w) = w^{−p}, p = 1/α, written as (w^{1−p} − 1)/(1 − p) so
/// that it tends to log w as p → 1 without a large constant.
double fairUtility(double w, double p) {
  const double q = 1.0 - p;
  return std::abs(q) < 1e-12 ? std::log(w) : std::expm1(q * std::log(w)) / q;
}

/// The log-barrier terms of the Nash subproblem at x: ψ_i = log x_i + log (Mx)_i.
/// Empty if x is outside the barrier's domain (some x_i, (Mx)_i or ψ_i ≤ 0).
Vector nashSlack(const Gram& gram, const Vector& x) {
  const Vector u = times(gram, x);
  Vector psi(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!(x[i] > 0.0) || !(u[i] > 0.0)) return {};
    psi[i] = std::log(x[i]) + std::log(u[i]);
    if (!(psi[i] > 0.0)) return {};
  }
  return psi;
}

}  // namespace

double fairResidual(const Gram& gram, double alpha, const std::vector<double>& w) {
  const Vector mw = times(gram, w);
  Vector target(w.size()), difference(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    target[i] = std::pow(w[i], -1.0 / alpha);
    difference[i] = mw[i] - target[i];
  }
  return norm(difference) / norm(target);
}

FairWeights solveFairWeights(const Gram& gram, double alpha, int64_t maxIterations,
                             double tolerance) {
  checkGram(gram, "solveFairWeights");
  if (!(alpha > 0.0)) throw std::invalid_argument("solveFairWeights: alpha must be > 0");
  const auto n = static_cast<std::size_t>(gram.n);
  FairWeights out;
  out.weights.assign(n, 1.0 / static_cast<double>(n));
  const double size = frobenius(gram);
  if (!(size > 0.0)) return out;
  // On M/‖M‖_F the solution is O(1) whatever the gradients' scale; M w = w^{−p}
  // then holds for w = ‖M‖_F^{−1/(1+p)} times it.
  const Gram m = scaled(gram, 1.0 / size);
  const double p = 1.0 / alpha;
  auto objective = [&](const Vector& w) {
    double f = 0.5 * dot(w, times(m, w));
    for (double v : w) f -= fairUtility(v, p);
    return f;
  };
  // The official code starts least squares from w = 1/T; the solution is
  // unique, so Newton starts instead from the orthogonal case's closed form
  // w_i = M_ii^{−1/(1+p)}, which is far closer when p = 1/α is large.
  Vector w(n);
  for (std::size_t i = 0; i < n; ++i) {
    w[i] = std::pow(std::max(m.at(static_cast<int64_t>(i), static_cast<int64_t>(i)), 1e-12),
                    -1.0 / (1.0 + p));
  }
  double f = objective(w);
  for (; out.iterations < maxIterations; ++out.iterations) {
    const Vector mw = times(m, w);
    Vector gradient(n), hessian = m.m;
    for (std::size_t i = 0; i < n; ++i) {
      gradient[i] = mw[i] - std::pow(w[i], -p);
      hessian[i * n + i] += p * std::pow(w[i], -p - 1.0);
    }
    if (fairResidual(m, alpha, w) < tolerance) break;
    Vector negative(n);
    for (std::size_t i = 0; i < n; ++i) negative[i] = -gradient[i];
    const Vector dx = solveLinear(hessian, negative);
    if (dx.empty()) break;
    const double slope = dot(gradient, dx);
    if (!(slope < 0.0)) break;
    // At most 90 % of the way to the boundary w = 0.
    double step = 1.0;
    for (std::size_t i = 0; i < n; ++i) {
      if (dx[i] < 0.0) step = std::min(step, 0.9 * w[i] / -dx[i]);
    }
    Vector trial(n);
    bool accepted = false;
    for (int backtrack = 0; backtrack < 80 && !accepted; ++backtrack, step *= 0.5) {
      for (std::size_t i = 0; i < n; ++i) trial[i] = w[i] + step * dx[i];
      const double fTrial = objective(trial);
      // The slack admits the last steps, whose decrease is below rounding of F.
      accepted = fTrial <= f + 1e-4 * step * slope + 1e-14 * std::abs(f);
      if (accepted) f = fTrial;
    }
    if (!accepted) break;
    w = trial;
    // F_α unbounded below (no solution): w runs off along a direction with M v = 0.
    if (*std::max_element(w.begin(), w.end()) > 1e12) return out;
  }
  if (!(fairResidual(m, alpha, w) < 1e-6)) return out;
  const double rescale = std::pow(size, -1.0 / (1.0 + p));
  for (std::size_t i = 0; i < n; ++i) out.weights[i] = w[i] * rescale;
  out.solved = true;
  return out;
}

FairWeights fairLeastSquares(const Gram& gram, double alpha) {
  checkGram(gram, "fairLeastSquares");
  if (!(alpha > 0.0)) throw std::invalid_argument("fairLeastSquares: alpha must be > 0");
  const auto n = static_cast<std::size_t>(gram.n);
  const double p = 1.0 / alpha;
  auto residualAt = [&](const Vector& w) {
    Vector r = times(gram, w);
    for (std::size_t i = 0; i < n; ++i) r[i] -= std::pow(w[i], -p);
    return r;
  };
  FairWeights out;
  Vector w(n, 1.0 / static_cast<double>(n));
  Vector r = residualAt(w);
  double cost = 0.5 * dot(r, r);
  Vector gradient, normal;  // Jᵀr and JᵀJ at w, recomputed after every accepted step
  bool fresh = false;
  double damping = -1.0;
  const auto limit = static_cast<int64_t>(100 * n);
  for (; out.iterations < limit; ++out.iterations) {
    if (!fresh) {
      // J = M + p·diag(w^{−p−1}) is symmetric positive definite, so JᵀJ is too.
      Vector jacobian = gram.m;
      for (std::size_t i = 0; i < n; ++i) jacobian[i * n + i] += p * std::pow(w[i], -p - 1.0);
      gradient.assign(n, 0.0);
      normal.assign(n * n, 0.0);
      for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t k = 0; k < n; ++k) {
          gradient[i] += jacobian[k * n + i] * r[k];
          for (std::size_t j = 0; j < n; ++j) {
            normal[i * n + j] += jacobian[k * n + i] * jacobian[k * n + j];
          }
        }
      }
      double scaledGradient = 0.0;  // scipy's gtol test with its bound scaling
      for (std::size_t i = 0; i < n; ++i) {
        const double v = gradient[i] > 0.0 ? w[i] : 1.0;
        scaledGradient = std::max(scaledGradient, std::abs(v * gradient[i]));
      }
      if (scaledGradient < 1e-8) break;
      if (damping < 0.0) {
        for (std::size_t i = 0; i < n; ++i) damping = std::max(damping, 1e-3 * normal[i * n + i]);
      }
      fresh = true;
    }
    Vector system = normal, negative(n);
    for (std::size_t i = 0; i < n; ++i) {
      system[i * n + i] += damping * normal[i * n + i];
      negative[i] = -gradient[i];
    }
    const Vector dx = solveLinear(std::move(system), negative);
    if (dx.empty()) break;
    // Stay inside the bound: at most 99 % of the way to w = 0.
    double step = 1.0;
    for (std::size_t i = 0; i < n; ++i) {
      if (dx[i] < 0.0) step = std::min(step, 0.99 * w[i] / -dx[i]);
    }
    Vector trial(n);
    for (std::size_t i = 0; i < n; ++i) trial[i] = w[i] + step * dx[i];
    const Vector rTrial = residualAt(trial);
    const double costTrial = 0.5 * dot(rTrial, rTrial);
    if (!(costTrial < cost)) {
      damping *= 4.0;
      if (damping > 1e16) break;
      continue;
    }
    const bool small = cost - costTrial < 1e-8 * cost ||
                       step * norm(dx) < 1e-8 * (1e-8 + norm(w));  // scipy's ftol, xtol
    w = trial;
    r = rTrial;
    cost = costTrial;
    damping = std::max(damping / 3.0, 1e-15);
    fresh = false;
    if (small) break;
  }
  out.weights = w;
  return out;
}

std::vector<double> nashVertex(const Gram& gram, const std::vector<double>& c) {
  checkGram(gram, "nashVertex");
  const auto n = static_cast<std::size_t>(gram.n);
  if (c.size() != n) throw std::invalid_argument("nashVertex: c must have one entry per row");
  const FairWeights nash = solveFairWeights(gram, 1.0);
  if (!nash.solved) return {};
  const Vector& x = nash.weights;
  const Vector u = times(gram, x);
  // KKT: c = Σ_i λ_i ∇ψ_i(x) with ∇ψ_i = e_i/x_i + M_i/u_i, i.e. Jᵀλ = c for
  // J_ij = δ_ij/x_i + M_ij/u_i; the problem is convex (each ψ_i is concave), so
  // λ ≥ 0 makes x its minimiser. Strictly positive λ is required: a zero
  // multiplier leaves the minimiser possibly elsewhere on a face.
  Vector transposed(n * n);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      transposed[j * n + i] = gram.m[i * n + j] / u[i] + (i == j ? 1.0 / x[i] : 0.0);
    }
  }
  const Vector lambda = solveLinear(std::move(transposed), c);
  if (lambda.empty()) return {};
  for (double l : lambda) {
    if (!(l > 0.0)) return {};
  }
  return x;
}

std::vector<double> solveNashSubproblem(const Gram& gram, const std::vector<double>& c,
                                        const std::vector<double>& start) {
  checkGram(gram, "solveNashSubproblem");
  const auto n = static_cast<std::size_t>(gram.n);
  if (c.size() != n || start.size() != n) {
    throw std::invalid_argument("solveNashSubproblem: c and start must have one entry per row");
  }
  if (nashSlack(gram, start).empty()) return {};
  // The CCP's problems almost always end at the vertex: one Newton solve of
  // the Nash system and a T×T check instead of a barrier path of ~10 stages.
  Vector vertex = nashVertex(gram, c);
  if (!vertex.empty()) return vertex;
  return solveNashSubproblemByBarrier(gram, c, start);
}

std::vector<double> solveNashSubproblemByBarrier(const Gram& gram, const std::vector<double>& c,
                                                 const std::vector<double>& start) {
  checkGram(gram, "solveNashSubproblemByBarrier");
  const auto n = static_cast<std::size_t>(gram.n);
  if (c.size() != n || start.size() != n) {
    throw std::invalid_argument(
        "solveNashSubproblemByBarrier: c and start must have one entry per row");
  }
  Vector x = start;
  if (nashSlack(gram, x).empty()) return {};
  // Scaling the objective does not move its minimiser; a unit c keeps the
  // barrier parameter's schedule independent of the problem's units.
  const double cNorm = norm(c);
  if (!(cNorm > 0.0) || !std::isfinite(cNorm)) return {};
  Vector unit(n);
  for (std::size_t i = 0; i < n; ++i) unit[i] = c[i] / cNorm;
  const double startNorm = norm(start);

  // Minimise t cᵀx − Σ_i log ψ_i(x) for t = 1, 20, 400, … until the duality
  // gap bound n/t is negligible.
  for (double t = 1.0;; t *= 20.0) {
    auto barrier = [&](const Vector& y, const Vector& psi) {
      double f = t * dot(unit, y);
      for (double v : psi) f -= std::log(v);
      return f;
    };
    for (int newton = 0; newton < 100; ++newton) {
      const Vector psi = nashSlack(gram, x);
      const Vector u = times(gram, x);
      Vector gradient(n), hessian(n * n, 0.0);
      for (std::size_t j = 0; j < n; ++j) gradient[j] = t * unit[j];
      for (std::size_t i = 0; i < n; ++i) {
        // ∇ψ_i = e_i/x_i + M_i/u_i;  −∇²ψ_i = e_i e_iᵀ/x_i² + M_i M_iᵀ/u_i².
        Vector dpsi(n);
        for (std::size_t j = 0; j < n; ++j) dpsi[j] = gram.m[i * n + j] / u[i];
        dpsi[i] += 1.0 / x[i];
        for (std::size_t j = 0; j < n; ++j) {
          gradient[j] -= dpsi[j] / psi[i];
          for (std::size_t k = 0; k < n; ++k) {
            hessian[j * n + k] += dpsi[j] * dpsi[k] / (psi[i] * psi[i]) +
                                  gram.m[i * n + j] * gram.m[i * n + k] / (u[i] * u[i] * psi[i]);
          }
        }
        hessian[i * n + i] += 1.0 / (x[i] * x[i] * psi[i]);
      }
      Vector negative(n);
      for (std::size_t j = 0; j < n; ++j) negative[j] = -gradient[j];
      const Vector dx = solveLinear(hessian, negative);
      if (dx.empty()) break;
      const double slope = dot(gradient, dx);  // −λ², λ the Newton decrement
      if (!(slope < -1e-14)) break;
      const double f = barrier(x, psi);
      bool accepted = false;
      Vector trial(n);
      for (double step = 1.0; step > 1e-20 && !accepted; step *= 0.5) {
        for (std::size_t j = 0; j < n; ++j) trial[j] = x[j] + step * dx[j];
        const Vector trialPsi = nashSlack(gram, trial);
        accepted = !trialPsi.empty() &&
                   barrier(trial, trialPsi) <= f + 0.25 * step * slope + 1e-14 * std::abs(f);
      }
      if (!accepted) break;
      x = trial;
      if (norm(x) > 1e12 * startNorm) return {};  // unbounded below
    }
    if (static_cast<double>(n) / t < 1e-11) break;
  }
  return x;
}

FairWeights solveNashMtl(const Gram& gram, const std::vector<double>& start, int64_t maxSteps) {
  checkGram(gram, "solveNashMtl");
  const auto n = static_cast<std::size_t>(gram.n);
  if (start.size() != n)
    throw std::invalid_argument("solveNashMtl: start must have one entry per row");
  for (double v : start) {
    if (!(v > 0.0) || !std::isfinite(v)) {
      throw std::invalid_argument("solveNashMtl: start must be positive and finite");
    }
  }
  FairWeights out;
  out.weights = start;
  const double size = frobenius(gram);
  if (!(size > 0.0)) return out;
  // α̃ = √‖M‖_F α solves M̃ α̃ = 1/α̃ with M̃ = M/‖M‖_F: the CCP runs on M̃ and α̃.
  const Gram m = scaled(gram, 1.0 / size);
  const double root = std::sqrt(size);
  Vector beta(n);
  for (std::size_t i = 0; i < n; ++i) beta[i] = start[i] * root;
  Vector rowSums = times(m, Vector(n, 1.0));
  bool solved = false;

  for (int64_t step = 0; step < maxSteps; ++step) {
    Vector u = times(m, beta);
    Vector misfit(n);
    for (std::size_t i = 0; i < n; ++i) misfit[i] = u[i] - 1.0 / (beta[i] + 1e-10);
    if (norm(misfit) < 1e-3) {
      solved = true;
      break;
    }
    bool inDomain = true;
    for (double v : u) inDomain = inDomain && v > 0.0;
    if (!inDomain) {
      // φ is undefined where some (M̃α)_i ≤ 0 (the official code linearises
      // there anyway and its solver may then fail, leaving α at the start).
      // Take the direct solution, which passes the stop test; there is none
      // when no α > 0 has M α > 0.
      const FairWeights direct = solveFairWeights(m, 1.0);
      if (!direct.solved) break;
      beta = direct.weights;
      solved = true;
      break;
    }
    // c = 1ᵀM (in α̃'s units: √‖M‖_F M̃ 1) + ∇φ(α̃_k), ∇φ = 1/α̃ + M̃ (1/(M̃ α̃)).
    Vector c(n), inverseU(n);
    for (std::size_t i = 0; i < n; ++i) inverseU[i] = 1.0 / u[i];
    const Vector back = times(m, inverseU);
    for (std::size_t j = 0; j < n; ++j) c[j] = root * rowSums[j] + 1.0 / beta[j] + back[j];
    // A strictly feasible start: β scaled until min_i β_i (M̃β)_i = 2.
    double smallest = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < n; ++i) smallest = std::min(smallest, beta[i] * u[i]);
    Vector feasible(n);
    for (std::size_t i = 0; i < n; ++i) feasible[i] = beta[i] * std::sqrt(2.0 / smallest);
    const Vector next = solveNashSubproblem(m, c, feasible);
    if (next.empty()) break;
    ++out.iterations;
    solved = true;
    Vector change(n);
    for (std::size_t i = 0; i < n; ++i) change[i] = next[i] - beta[i];
    if (norm(change) < 1e-6) break;
    beta = next;
  }
  if (!solved) return out;
  for (std::size_t i = 0; i < n; ++i) out.weights[i] = beta[i] / root;
  out.solved = true;
  return out;
}

}  // namespace fulcrum::detail
