// The small solvers of the gradient-combining strategies, on their own:
// the min-norm element (MGDA) and CAGrad's dual, on hand-made Gram matrices.
#include <catch2/catch.hpp>
#include <cmath>

#include "strategies/cagrad_dual.h"
#include "strategies/min_norm.h"

using namespace fulcrum::detail;

namespace {

/// The Gram matrix of the rows of `rows`.
Gram gramOfRows(const std::vector<std::vector<double>>& rows) {
  Gram gram;
  gram.n = static_cast<int64_t>(rows.size());
  for (const auto& a : rows) {
    for (const auto& b : rows) {
      double s = 0.0;
      for (std::size_t k = 0; k < a.size(); ++k) s += a[k] * b[k];
      gram.m.push_back(s);
    }
  }
  return gram;
}

/// Σ_i w_i rows_i.
std::vector<double> combination(const std::vector<std::vector<double>>& rows,
                                const std::vector<double>& w) {
  std::vector<double> out(rows[0].size(), 0.0);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    for (std::size_t k = 0; k < out.size(); ++k) out[k] += w[i] * rows[i][k];
  }
  return out;
}

}  // namespace

TEST_CASE("minNormPair: the clipped closed form", "[solver][min_norm]") {
  // v1 = (2,0), v2 = (0,1): γ = (1 − 0)/(4 + 1 − 0) = 0.2.
  REQUIRE(minNormPair(4.0, 0.0, 1.0) == Approx(0.2));
  // Orthogonal unit vectors: γ = 1/2.
  REQUIRE(minNormPair(1.0, 0.0, 1.0) == Approx(0.5));
  // v1 = (1,0), v2 = (3,0): v1·v2 = 3 ≥ v1·v1, v1 itself is the min-norm point.
  REQUIRE(minNormPair(1.0, 3.0, 9.0) == 1.0);
  // ... and with the roles swapped γ = 0.
  REQUIRE(minNormPair(9.0, 3.0, 1.0) == 0.0);
}

TEST_CASE("minNormElement: closed form for two vectors, Frank-Wolfe beyond", "[solver][min_norm]") {
  SECTION("two vectors take the closed form") {
    const SimplexSolution s = minNormElement(gramOfRows({{2, 0}, {0, 1}}));
    REQUIRE(s.weights[0] == Approx(0.2));
    REQUIRE(s.weights[1] == Approx(0.8));
    REQUIRE(s.iterations == 0);
  }
  SECTION("three orthonormal vectors: the centroid, found in one step") {
    // Mα = (1/3,1/3,1/3); towards e_0 the line search gives γ = 1 (α·Mα = (Mα)_0).
    const SimplexSolution s = minNormElement(gramOfRows({{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}));
    for (double a : s.weights) REQUIRE(a == Approx(1.0 / 3.0));
    REQUIRE(s.iterations == 1);
  }
  SECTION("a third vector that is not needed: Frank-Wolfe agrees with the pair's closed form") {
    // Hull of (2,0), (0,1), (5,5): the min-norm point of the first two is
    // 0.2·(2,0) + 0.8·(0,1) = (0.4, 0.8), and (0.4,0.8)·(5,5) = 6 ≥ ‖·‖² = 0.8,
    // so it is optimal over the whole hull.
    const std::vector<std::vector<double>> rows{{2, 0}, {0, 1}, {5, 5}};
    const SimplexSolution s = minNormElement(gramOfRows(rows), 250, 1e-5);
    const std::vector<double> d = combination(rows, s.weights);
    REQUIRE(d[0] == Approx(0.4).margin(2e-3));
    REQUIRE(d[1] == Approx(0.8).margin(2e-3));
    REQUIRE(s.iterations <= 250);
    double sum = 0.0;
    for (double a : s.weights) {
      REQUIRE(a >= 0.0);
      sum += a;
    }
    REQUIRE(sum == Approx(1.0));
  }
  SECTION("the iteration cap holds") {
    const SimplexSolution s = minNormElement(gramOfRows({{2, 0}, {0, 1}, {5, 5}}), 3, 1e-12);
    REQUIRE(s.iterations == 3);
  }
}

TEST_CASE("projectOntoSimplex", "[solver][cagrad]") {
  // (1, 0.5, −1): θ = (1 + 0.5 − 1)/2 = 0.25 → (0.75, 0.25, 0).
  const std::vector<double> w = projectOntoSimplex({1.0, 0.5, -1.0});
  REQUIRE(w[0] == Approx(0.75));
  REQUIRE(w[1] == Approx(0.25));
  REQUIRE(w[2] == 0.0);
  // A point of the simplex stays where it is.
  const std::vector<double> same = projectOntoSimplex({0.3, 0.7});
  REQUIRE(same[0] == Approx(0.3));
  REQUIRE(same[1] == Approx(0.7));
}

TEST_CASE("solveCagradDual: symmetric cases and a grid search", "[solver][cagrad]") {
  SECTION("orthogonal unit vectors: w = (1/2, 1/2) by symmetry") {
    const SimplexSolution s = solveCagradDual(gramOfRows({{1, 0}, {0, 1}}), 0.5);
    REQUIRE(s.weights[0] == Approx(0.5).margin(1e-6));
    REQUIRE(s.weights[1] == Approx(0.5).margin(1e-6));
  }
  SECTION("two tasks: the minimum of F over a fine grid of w") {
    const Gram gram = gramOfRows({{3, 0.5}, {-1, 2}});
    for (double c : {0.2, 0.5, 0.9}) {
      const SimplexSolution s = solveCagradDual(gram, c);
      double best = 1e300, bestW = 0.0;
      for (int k = 0; k <= 100000; ++k) {
        const double w = k / 100000.0;
        const double f = cagradDualObjective(gram, c, {w, 1.0 - w});
        if (f < best) {
          best = f;
          bestW = w;
        }
      }
      INFO("c = " << c);
      REQUIRE(cagradDualObjective(gram, c, s.weights) <= best + 1e-9);
      REQUIRE(s.weights[0] == Approx(bestW).margin(1e-4));
    }
  }
  SECTION("nearly opposite gradients: stops when F stops decreasing, not at the maximum") {
    // g1 = (1, 0), g2 = (-1, 0.1): F is steep across w1 = w2, so rounding
    // ends the descent long before 1000 iterations (it used to run them all).
    const Gram gram = gramOfRows({{1, 0}, {-1, 0.1}});
    for (double c : {0.1, 0.5}) {
      const SimplexSolution s = solveCagradDual(gram, c);
      // F restricted to w = (x, 1 - x) is convex: golden-section search.
      auto f = [&](double x) { return cagradDualObjective(gram, c, {x, 1.0 - x}); };
      double lo = 0.0, hi = 1.0;
      const double ratio = (std::sqrt(5.0) - 1.0) / 2.0;
      for (int k = 0; k < 200; ++k) {
        const double a = hi - ratio * (hi - lo), b = lo + ratio * (hi - lo);
        (f(a) < f(b) ? hi : lo) = (f(a) < f(b) ? b : a);
      }
      INFO("c = " << c << ", iterations " << s.iterations);
      REQUIRE(s.iterations < 100);
      REQUIRE(cagradDualObjective(gram, c, s.weights) <= f((lo + hi) / 2.0) + 1e-14);
      REQUIRE(s.weights[0] == Approx((lo + hi) / 2.0).margin(1e-6));
    }
  }
}
