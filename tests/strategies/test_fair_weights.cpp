#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "strategies/fair_weights.h"

using namespace fulcrum::detail;

namespace {

using Vec = std::vector<double>;

Gram gramOfRows(const std::vector<Vec>& rows) {
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

std::vector<Vec> randomRows(int rows, int cols, unsigned seed, double scale = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<Vec> out(rows, Vec(cols));
  for (auto& row : out) {
    for (double& v : row) v = scale * normal(rng);
  }
  return out;
}

Vec times(const Gram& gram, const Vec& x) {
  const auto n = static_cast<std::size_t>(gram.n);
  Vec out(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) out[i] += gram.m[i * n + j] * x[j];
  }
  return out;
}

}  // namespace

TEST_CASE("solveFairWeights: orthogonal gradients in closed form", "[solver][fairgrad]") {
  // M = diag(64, 1): m_i w_i = w_i^{−1/α} ⇒ w_i = m_i^{−α/(α+1)}.
  const Gram gram = gramOfRows({{8, 0}, {0, 1}});
  SECTION("α = 2: w = (64^{−2/3}, 1) = (1/16, 1)") {
    const FairWeights w = solveFairWeights(gram, 2.0);
    REQUIRE(w.solved);
    REQUIRE(w.weights[0] == Approx(1.0 / 16.0).epsilon(1e-10));
    REQUIRE(w.weights[1] == Approx(1.0).epsilon(1e-10));
  }
  SECTION("α = 1: w = 1/‖g‖ = (1/8, 1)") {
    const FairWeights w = solveFairWeights(gram, 1.0);
    REQUIRE(w.weights[0] == Approx(0.125).epsilon(1e-10));
    REQUIRE(w.weights[1] == Approx(1.0).epsilon(1e-10));
  }
  SECTION("α = 1/2: w = (64^{−1/3}, 1) = (1/4, 1)") {
    const FairWeights w = solveFairWeights(gram, 0.5);
    REQUIRE(w.weights[0] == Approx(0.25).epsilon(1e-10));
    REQUIRE(w.weights[1] == Approx(1.0).epsilon(1e-10));
  }
}

TEST_CASE("solveFairWeights: two unit gradients at cosine ρ", "[solver][fairgrad]") {
  // By symmetry w_1 = w_2 = w with (1 + ρ) w = w^{−1/α}: w = (1 + ρ)^{−α/(α+1)}.
  const double rho = 0.5;
  const Gram gram = gramOfRows({{1, 0}, {rho, std::sqrt(1 - rho * rho)}});
  for (double alpha : {0.5, 1.0, 3.0}) {
    INFO("alpha " << alpha);
    const FairWeights w = solveFairWeights(gram, alpha);
    REQUIRE(w.solved);
    const double expected = std::pow(1.0 + rho, -alpha / (alpha + 1.0));
    REQUIRE(w.weights[0] == Approx(expected).epsilon(1e-10));
    REQUIRE(w.weights[1] == Approx(expected).epsilon(1e-10));
  }
}

TEST_CASE("solveFairWeights: the residual vanishes on random matrices and scales as claimed",
          "[solver][fairgrad]") {
  for (double alpha : {0.1, 0.5, 1.0, 2.0, 5.0, 50.0}) {
    for (unsigned seed : {1u, 2u, 3u}) {
      INFO("alpha " << alpha << ", seed " << seed);
      const Gram gram = gramOfRows(randomRows(4, 7, seed));
      const FairWeights w = solveFairWeights(gram, alpha);
      REQUIRE(w.solved);
      REQUIRE(w.iterations < 100);
      REQUIRE(fairResidual(gram, alpha, w.weights) < 1e-10);
      for (double v : w.weights) REQUIRE(v > 0.0);
      // G → c G scales M by c², hence w by (c²)^{−α/(α+1)}.
      const double c = 1e-3;
      const Gram small = gramOfRows(randomRows(4, 7, seed, c));
      const FairWeights ws = solveFairWeights(small, alpha);
      for (std::size_t i = 0; i < 4; ++i) {
        REQUIRE(ws.weights[i] ==
                Approx(w.weights[i] * std::pow(c * c, -alpha / (alpha + 1.0))).epsilon(1e-8));
      }
    }
  }
}

TEST_CASE("solveFairWeights: no solution for opposed or zero gradients", "[solver][fairgrad]") {
  for (const auto& rows : {std::vector<Vec>{{1, 0}, {-2, 0}}, std::vector<Vec>{{1, 0}, {0, 0}},
                           std::vector<Vec>{{0, 0}, {0, 0}}}) {
    const FairWeights w = solveFairWeights(gramOfRows(rows), 2.0);
    REQUIRE_FALSE(w.solved);
    REQUIRE(w.weights == Vec{0.5, 0.5});
  }
}

TEST_CASE("fairLeastSquares: the official bounded least squares where there is no root",
          "[solver][fairgrad]") {
  SECTION("opposed unit gradients, α = 1: equal weights past scipy's gtol, d = 0") {
    // On the ray w = (c, c): r = −(1/c, 1/c), M r = 0, Jᵀr = −c^{−3}(1, 1), so
    // the gtol test (‖Jᵀr‖_∞ < 1e-8) first holds at c > 1e8^{1/3} ≈ 464; each
    // Gauss–Newton step at most doubles c (scipy stops at 512).
    const FairWeights w = fairLeastSquares(gramOfRows({{1, 0}, {-1, 0}}), 1.0);
    REQUIRE_FALSE(w.solved);
    REQUIRE(w.weights[0] == Approx(w.weights[1]).epsilon(1e-12));
    REQUIRE(w.weights[0] > 464.0);
    REQUIRE(w.weights[0] < 1000.0);
  }
  SECTION("(1, 0) and (−2, 0): w_1 ≈ 2 w_2, so d = w_1 − 2 w_2 ≈ 0 (scipy: w = (974, 487))") {
    for (double alpha : {1.0, 2.0}) {
      const FairWeights w = fairLeastSquares(gramOfRows({{1, 0}, {-2, 0}}), alpha);
      REQUIRE(w.weights[0] / w.weights[1] == Approx(2.0).epsilon(1e-2));
      REQUIRE(std::abs(w.weights[0] - 2.0 * w.weights[1]) < 1e-2);
      REQUIRE(w.weights[1] > 100.0);
    }
  }
  SECTION("a cancelling pair and an orthogonal third task: w_3 = 1 (w_3 = 1/w_3), d = g_3") {
    const FairWeights w = fairLeastSquares(gramOfRows({{1, 0}, {-1, 0}, {0, 1}}), 1.0);
    REQUIRE(w.weights[0] == Approx(w.weights[1]).epsilon(1e-12));
    REQUIRE(w.weights[0] > 100.0);
    REQUIRE(w.weights[2] == Approx(1.0).epsilon(1e-4));
  }
  SECTION("with a root it converges to solveFairWeights' solution") {
    for (double alpha : {0.5, 1.0, 2.0}) {
      const Gram gram = gramOfRows(randomRows(3, 5, 11));
      const FairWeights root = solveFairWeights(gram, alpha);
      const FairWeights ls = fairLeastSquares(gram, alpha);
      REQUIRE(root.solved);
      for (std::size_t i = 0; i < 3; ++i) {
        REQUIRE(ls.weights[i] == Approx(root.weights[i]).epsilon(1e-5));
      }
    }
  }
}

TEST_CASE("solveNashSubproblem: one convex problem of the CCP", "[solver][nash_mtl]") {
  // M = I: the constraints are α_i² ≥ 1, so any c > 0 puts the minimiser at (1, 1).
  const Gram identity = gramOfRows({{1, 0}, {0, 1}});
  const Vec x = solveNashSubproblem(identity, {1.0, 4.0}, {3.0, 2.0});
  REQUIRE(x.size() == 2);
  REQUIRE(x[0] == Approx(1.0).epsilon(1e-8));
  REQUIRE(x[1] == Approx(1.0).epsilon(1e-8));
  SECTION("an infeasible start or an unbounded problem gives no answer") {
    REQUIRE(solveNashSubproblem(identity, {1.0, 1.0}, {1.0, 0.5}).empty());   // α_2² < 1
    REQUIRE(solveNashSubproblem(identity, {-1.0, 1.0}, {2.0, 2.0}).empty());  // α_1 → ∞
  }
  SECTION("the Nash point is a fixed point: linearised there, the problem returns it") {
    const Gram gram = gramOfRows(randomRows(3, 5, 7));
    const FairWeights nash = solveFairWeights(gram, 1.0);
    REQUIRE(nash.solved);
    const Vec& a = nash.weights;
    const Vec u = times(gram, a);
    Vec inverseU(3), c(3);
    for (std::size_t i = 0; i < 3; ++i) inverseU[i] = 1.0 / u[i];
    const Vec back = times(gram, inverseU), rowSums = times(gram, Vec(3, 1.0));
    for (std::size_t i = 0; i < 3; ++i) c[i] = rowSums[i] + 1.0 / a[i] + back[i];
    const Vec start{2 * a[0], 2 * a[1], 2 * a[2]};
    const Vec fixed = solveNashSubproblem(gram, c, start);
    REQUIRE(fixed.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) REQUIRE(fixed[i] == Approx(a[i]).epsilon(1e-7));
  }
}

TEST_CASE("solveNashSubproblem: the vertex shortcut gives the barrier method's minimiser",
          "[solver][nash_mtl]") {
  SECTION("CCP problems of random gradients, T = 2 … 10: the vertex, as the barrier finds it") {
    int vertices = 0, cases = 0;
    for (int tasks : {2, 3, 5, 10}) {
      for (unsigned seed = 1; seed <= 6; ++seed) {
        INFO("T " << tasks << ", seed " << seed);
        Gram gram = gramOfRows(randomRows(tasks, tasks + 3, 100 * tasks + seed));
        double size = 0.0;
        for (double v : gram.m) size += v * v;
        for (double& v : gram.m) v /= std::sqrt(size);  // as the CCP runs it
        const FairWeights nash = solveFairWeights(gram, 1.0);
        if (!nash.solved) continue;
        // Linearised at a point off the solution, as at a CCP step.
        std::mt19937 rng(seed);
        std::uniform_real_distribution<double> factor(0.5, 2.0);
        const auto n = static_cast<std::size_t>(tasks);
        Vec a(n);
        for (std::size_t i = 0; i < n; ++i) a[i] = nash.weights[i] * factor(rng);
        const Vec u = times(gram, a);
        if (*std::min_element(u.begin(), u.end()) <= 0.0) continue;
        Vec inverseU(n), c(n);
        for (std::size_t i = 0; i < n; ++i) inverseU[i] = 1.0 / u[i];
        const Vec back = times(gram, inverseU), rowSums = times(gram, Vec(n, 1.0));
        for (std::size_t i = 0; i < n; ++i) c[i] = rowSums[i] + 1.0 / a[i] + back[i];
        double smallest = 1e300;
        for (std::size_t i = 0; i < n; ++i) smallest = std::min(smallest, a[i] * u[i]);
        Vec start(n);
        for (std::size_t i = 0; i < n; ++i) start[i] = a[i] * std::sqrt(2.0 / smallest);

        const Vec fast = solveNashSubproblem(gram, c, start);
        const Vec barrier = solveNashSubproblemByBarrier(gram, c, start);
        REQUIRE(fast.size() == n);
        REQUIRE(barrier.size() == n);
        for (std::size_t i = 0; i < n; ++i) REQUIRE(fast[i] == Approx(barrier[i]).epsilon(1e-7));
        ++cases;
        if (!nashVertex(gram, c).empty()) ++vertices;
      }
    }
    REQUIRE(cases >= 12);
    REQUIRE(vertices == cases);
  }
  SECTION("a minimiser with an inactive constraint is left to the barrier method") {
    // min α_1 + 0.01 α_2 s.t. α_1(α_1 + α_2/2) ≥ 1 (active), α_2(α_1/2 + α_2) ≥ 1
    // (inactive): the multiplier conditions give α_2 = 96 α_1, 49 α_1² = 1.
    const Gram gram{2, {1.0, 0.5, 0.5, 1.0}};
    const Vec c{1.0, 0.01};
    REQUIRE(nashVertex(gram, c).empty());
    const Vec x = solveNashSubproblem(gram, c, {2.0, 2.0});
    REQUIRE(x.size() == 2);
    REQUIRE(x[0] == Approx(1.0 / 7.0).epsilon(1e-7));
    REQUIRE(x[1] == Approx(96.0 / 7.0).epsilon(1e-7));
    REQUIRE(x == solveNashSubproblemByBarrier(gram, c, {2.0, 2.0}));
  }
}

TEST_CASE("solveNashMtl: the concave-convex procedure finds G Gᵀ α = 1/α", "[solver][nash_mtl]") {
  SECTION("orthogonal gradients: α_i = 1/‖g_i‖ after one convex problem") {
    const Gram gram = gramOfRows({{3, 0}, {0, 4}});
    const FairWeights a = solveNashMtl(gram, {1.0, 1.0});
    REQUIRE(a.solved);
    REQUIRE(a.iterations == 1);
    REQUIRE(a.weights[0] == Approx(1.0 / 3.0).epsilon(1e-9));
    REQUIRE(a.weights[1] == Approx(0.25).epsilon(1e-9));
  }
  SECTION("two gradients at cosine ρ: α_i = 1/(‖g_i‖ √(1+ρ))") {
    // With x_i = ‖g_i‖ α_i the system reads x_1(x_1 + ρ x_2) = x_2(ρ x_1 + x_2) = 1,
    // so x_1 = x_2 = 1/√(1+ρ).
    const Gram gram = gramOfRows({{10, 0}, {0.6, 0.8}});
    const FairWeights a = solveNashMtl(gram, {1.0, 1.0});
    REQUIRE(a.weights[0] == Approx(1.0 / (10.0 * std::sqrt(1.6))).epsilon(1e-9));
    REQUIRE(a.weights[1] == Approx(1.0 / std::sqrt(1.6)).epsilon(1e-9));
  }
  SECTION("random three-task cases, at any scale, equal the direct solution") {
    for (unsigned seed : {1u, 2u, 3u, 4u}) {
      for (double scale : {1e-4, 1.0, 1e3}) {
        INFO("seed " << seed << ", scale " << scale);
        const Gram gram = gramOfRows(randomRows(3, 6, seed, scale));
        const FairWeights a = solveNashMtl(gram, {1.0, 1.0, 1.0});
        REQUIRE(a.solved);
        REQUIRE(a.iterations <= 20);
        REQUIRE(fairResidual(gram, 1.0, a.weights) < 1e-8);
        const FairWeights direct = solveFairWeights(gram, 1.0);
        for (std::size_t i = 0; i < 3; ++i)
          REQUIRE(a.weights[i] == Approx(direct.weights[i]).epsilon(1e-8));
      }
    }
  }
  SECTION("a warm start at the solution passes the stop test at once") {
    const Gram gram = gramOfRows(randomRows(3, 6, 5));
    const FairWeights first = solveNashMtl(gram, {1.0, 1.0, 1.0});
    const FairWeights again = solveNashMtl(gram, first.weights);
    REQUIRE(again.solved);
    REQUIRE(again.iterations == 0);
    REQUIRE(again.weights == first.weights);
  }
  SECTION("a start outside φ's domain (G Gᵀ α ≯ 0) is replaced by the direct solution") {
    // (1,0) and (−0.9,0.1): G Gᵀ 1 = (0.1, −0.08).
    const Gram gram = gramOfRows({{1, 0}, {-0.9, 0.1}});
    const FairWeights a = solveNashMtl(gram, {1.0, 1.0});
    REQUIRE(a.solved);
    REQUIRE(fairResidual(gram, 1.0, a.weights) < 1e-10);
  }
  SECTION("opposed or zero gradients: no solution, the start is kept") {
    for (const auto& rows : {std::vector<Vec>{{1, 0}, {-1, 0}}, std::vector<Vec>{{1, 0}, {0, 0}}}) {
      const FairWeights a = solveNashMtl(gramOfRows(rows), {0.5, 2.0});
      REQUIRE_FALSE(a.solved);
      REQUIRE(a.weights == Vec{0.5, 2.0});
    }
  }
  SECTION("at most maxSteps convex problems") {
    const Gram gram = gramOfRows(randomRows(4, 6, 9));
    REQUIRE(solveNashMtl(gram, {1, 1, 1, 1}, 1).iterations <= 1);
  }
}
