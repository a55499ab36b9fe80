// Aligned-MTL and its eigendecomposition, on hand-derived gradient matrices.
#include <catch2/catch.hpp>
#include <cmath>

#include "framework/gradients.h"
#include "strategies/aligned_mtl.h"
#include "strategies/registry.h"
#include "strategies/support.h"
#include "strategies/symmetric_eigen.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;

namespace {

fulcrum::detail::Gram gramOfRows(const std::vector<std::vector<double>>& rows) {
  fulcrum::detail::Gram gram;
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

const double kRoot5 = std::sqrt(5.0);

}  // namespace

TEST_CASE("symmetricEigen: Jacobi on hand-made matrices", "[solver][eigen]") {
  using fulcrum::detail::Gram;
  SECTION("[[2,1],[1,2]]: eigenvalues 3 and 1, eigenvectors (1,±1)/√2") {
    const auto eig = fulcrum::detail::symmetricEigen(Gram{2, {2, 1, 1, 2}});
    REQUIRE(eig.values[0] == Approx(3.0));
    REQUIRE(eig.values[1] == Approx(1.0));
    REQUIRE(std::abs(eig.vector(0, 0)) == Approx(1.0 / std::sqrt(2.0)));
    REQUIRE(eig.vector(0, 0) * eig.vector(1, 0) == Approx(0.5));   // same signs
    REQUIRE(eig.vector(0, 1) * eig.vector(1, 1) == Approx(-0.5));  // opposite signs
  }
  SECTION("a diagonal matrix comes back sorted, descending") {
    const auto eig = fulcrum::detail::symmetricEigen(Gram{3, {1, 0, 0, 0, 9, 0, 0, 0, 4}});
    REQUIRE(eig.values == std::vector<double>{9.0, 4.0, 1.0});
  }
  SECTION("a random 5×5 matrix: V Λ Vᵀ = M and Vᵀ V = I") {
    torch::manual_seed(7);
    const torch::Tensor a = torch::randn({5, 5}, torch::kFloat64);
    const torch::Tensor m = a + a.t();
    Gram gram{5, fulcrum::detail::toDoubles(m.reshape({-1}))};
    const auto eig = fulcrum::detail::symmetricEigen(gram);
    for (int64_t i = 0; i < 5; ++i) {
      for (int64_t j = 0; j < 5; ++j) {
        double rebuilt = 0.0, identity = 0.0;
        for (int64_t k = 0; k < 5; ++k) {
          rebuilt += eig.vector(i, k) * eig.values[static_cast<std::size_t>(k)] * eig.vector(j, k);
          identity += eig.vector(k, i) * eig.vector(k, j);
        }
        REQUIRE(rebuilt == Approx(gram.at(i, j)).margin(1e-12));
        REQUIRE(identity == Approx(i == j ? 1.0 : 0.0).margin(1e-12));
      }
    }
    for (int64_t k = 0; k + 1 < 5; ++k) REQUIRE(eig.values[k] >= eig.values[k + 1]);
  }
  SECTION("the pseudo-inverse of the singular [[1,1],[1,1]] is [[1,1],[1,1]]/4") {
    const Gram inverse = fulcrum::detail::symmetricPseudoInverse(Gram{2, {1, 1, 1, 1}});
    for (double x : inverse.m) REQUIRE(x == Approx(0.25));
  }
}

TEST_CASE("aligned_mtl: orthogonal gradients of norms a < b", "[strategy][aligned_mtl]") {
  const auto tasks = makeTasks({"a", "b"});
  auto aligned = attached("{name: aligned_mtl}", tasks);
  REQUIRE(aligned->needs() == GradientNeed::kSharedParameters);
  SECTION("a = 1, b = 2: ĝ = (g_a/1, g_b/2)·1, α = (1, 1/2), d = (1, 1)") {
    // M = diag(1, 4), V = I, σ = √1: α_i = σ w_i / ‖g_i‖.
    FixedGradients g({{1, 0}, {0, 2}});
    const StepOutput out = stepWith(*aligned, {1, 1}, g);
    REQUIRE(out.kind == StepOutput::Kind::kSharedGradient);
    const auto d = directionOf(out);
    REQUIRE(d[0] == Approx(1.0));
    REQUIRE(d[1] == Approx(1.0));
    // Diagnostics: rank, σ, α_a, α_b.
    REQUIRE(out.diagnostics[0] == 2.0);
    REQUIRE(out.diagnostics[1] == Approx(1.0));
    REQUIRE(out.diagnostics[2] == Approx(1.0));
    REQUIRE(out.diagnostics[3] == Approx(0.5));
    REQUIRE(weightsOf(out) == std::vector<double>{1.0, 1.0});
  }
  SECTION("one dominant gradient (10,0), (0,1): the large one is scaled down to σ = 1") {
    FixedGradients g({{10, 0}, {0, 1}});
    const StepOutput out = stepWith(*aligned, {1, 1}, g);
    const auto d = directionOf(out);
    REQUIRE(d[0] == Approx(1.0));
    REQUIRE(d[1] == Approx(1.0));
    REQUIRE(out.diagnostics[2] == Approx(0.1));
    REQUIRE(out.diagnostics[3] == Approx(1.0));
  }
  SECTION("pre-defined weights w = (2, 1): d = Ĝᵀw = (2, 1)") {
    auto weighted = attached("{name: aligned_mtl, weights: [2, 1]}", tasks);
    FixedGradients g({{1, 0}, {0, 2}});
    const auto d = directionOf(stepWith(*weighted, {1, 1}, g));
    REQUIRE(d[0] == Approx(2.0));
    REQUIRE(d[1] == Approx(1.0));
  }
}

TEST_CASE("aligned_mtl: a non-orthogonal pair in closed form", "[strategy][aligned_mtl]") {
  // g_a = (1,0), g_b = (1,1): M = [[1,1],[1,2]], det 1, trace 3, so
  // √M = (M + I)/√5 and M^{-1/2} = [[3,−1],[−1,2]]/√5; λ_min = (3−√5)/2 = σ²
  // with σ = (√5−1)/2. α = σ M^{-1/2} 1 = (σ/√5)(2, 1), d = (σ/√5)(3, 1), and
  // Ĝ = σ M^{-1/2} G = (σ/√5)[[2,−1],[1,2]]: orthogonal rows of norm σ.
  const double sigma = (kRoot5 - 1.0) / 2.0;
  const double c = sigma / kRoot5;
  const std::vector<std::vector<double>> rows{{1, 0}, {1, 1}};
  const auto tasks = makeTasks({"a", "b"});
  auto aligned = attached("{name: aligned_mtl, head_weights: alpha}", tasks);
  FixedGradients g(rows);
  const StepOutput out = stepWith(*aligned, {1, 1}, g);
  const auto d = directionOf(out);
  REQUIRE(d[0] == Approx(3.0 * c));
  REQUIRE(d[1] == Approx(c));
  REQUIRE(out.diagnostics[1] == Approx(sigma));
  const auto w = weightsOf(out);  // head_weights: alpha
  REQUIRE(w[0] == Approx(2.0 * c).epsilon(1e-6));
  REQUIRE(w[1] == Approx(c).epsilon(1e-6));

  const AlignedMtlTransform t = alignedMtlTransform(gramOfRows(rows), AlignedMtlScale::kMin);
  REQUIRE(t.rank == 2);
  // Ĝ = B G, row by row.
  const double expected[2][2] = {{2.0 * c, -c}, {c, 2.0 * c}};
  for (int i = 0; i < 2; ++i) {
    for (int k = 0; k < 2; ++k) {
      double entry = 0.0;
      for (int j = 0; j < 2; ++j)
        entry += t.b.at(i, j) * rows[static_cast<std::size_t>(j)][static_cast<std::size_t>(k)];
      REQUIRE(entry == Approx(expected[i][k]));
    }
  }
}

TEST_CASE("aligned_mtl: α can be negative, so heads keep weight 1 by default",
          "[strategy][aligned_mtl]") {
  // g_a = (1,0), g_b = (10,1): nearly parallel with unequal norms. Ĝ = B G must
  // be orthogonal, which takes a negative share of g_b: α ≈ (0.8933, −0.0777).
  const auto tasks = makeTasks({"a", "b"});
  FixedGradients g({{1, 0}, {10, 1}});
  auto aligned = attached("{name: aligned_mtl}", tasks);
  const StepOutput out = stepWith(*aligned, {1, 1}, g);
  REQUIRE(out.diagnostics[2] == Approx(0.89328892).epsilon(1e-6));
  REQUIRE(out.diagnostics[3] == Approx(-0.0776773).epsilon(1e-5));
  REQUIRE(weightsOf(out) == std::vector<double>{1.0, 1.0});
  // The aligned gradients each improve by Ĝ d = Ĝ Ĝᵀ 1 = σ² (about 0.0098);
  // the original ones by G d = σ M^{1/2} 1 ≈ (0.1165, 1.0875).
  const auto d = directionOf(out);
  REQUIRE(d[0] == Approx(0.11651595).epsilon(1e-6));
  REQUIRE(10.0 * d[0] + d[1] == Approx(1.08748216).epsilon(1e-6));
  REQUIRE(out.diagnostics[1] * out.diagnostics[1] == Approx(0.009804864).epsilon(1e-6));
}

TEST_CASE("aligned_mtl: aligned rows are orthogonal with equal norms; invariances",
          "[strategy][aligned_mtl]") {
  torch::manual_seed(3);
  const torch::Tensor g = torch::randn({3, 6}, torch::kFloat64) *
                          torch::tensor({1.0, 10.0, 0.1}, torch::kFloat64).unsqueeze(1);
  const auto rows = fulcrum::detail::matrixRows(g);
  const AlignedMtlTransform t = alignedMtlTransform(gramOfRows(rows), AlignedMtlScale::kMin);
  REQUIRE(t.rank == 3);
  const torch::Tensor b = torch::tensor(t.b.m, torch::kFloat64).view({3, 3});
  const torch::Tensor aligned = b.mm(g);
  const torch::Tensor product = aligned.mm(aligned.t());
  // Ĝ Ĝᵀ = σ² I, and σ is the smallest singular value of G.
  const torch::Tensor expected = torch::eye(3, torch::kFloat64) * t.sigma * t.sigma;
  REQUIRE(torch::allclose(product, expected, 1e-9, 1e-12));
  const double smallest = torch::linalg_svdvals(g).min().item<double>();
  REQUIRE(t.sigma == Approx(smallest));

  const auto tasks = makeTasks({"a", "b", "c"});
  auto aligned_mtl = attached("{name: aligned_mtl}", tasks);
  FixedGradients source(g);
  const StepOutput out = stepWith(*aligned_mtl, {1, 1, 1}, source);
  // d = Ĝᵀ 1.
  REQUIRE(torch::allclose(out.direction, aligned.sum(0), 1e-9, 1e-12));

  SECTION("a rotation R of the parameter space rotates d: d(G R) = d(G) R") {
    const torch::Tensor r = std::get<0>(torch::linalg_qr(torch::randn({6, 6}, torch::kFloat64)));
    FixedGradients rotated(g.mm(r));
    const StepOutput turned = stepWith(*aligned_mtl, {1, 1, 1}, rotated);
    REQUIRE(torch::allclose(turned.direction, out.direction.unsqueeze(0).mm(r).squeeze(0), 1e-9,
                            1e-12));
  }
  SECTION("scaling G by c scales d by c (σ by c, M^{-1/2} by 1/c)") {
    FixedGradients scaled(g * 7.0);
    const StepOutput bigger = stepWith(*aligned_mtl, {1, 1, 1}, scaled);
    REQUIRE(torch::allclose(bigger.direction, out.direction * 7.0, 1e-9, 1e-12));
  }
}

TEST_CASE("aligned_mtl: rank-deficient and zero gradients give finite updates",
          "[strategy][aligned_mtl]") {
  const auto tasks = makeTasks({"a", "b"});
  auto aligned = attached("{name: aligned_mtl}", tasks);
  SECTION("two equal rows (1,1): rank 1, λ = 4, σ = 2, B = vvᵀ with v = (1,1)/√2, α = (1,1)") {
    FixedGradients g({{1, 1}, {1, 1}});
    const StepOutput out = stepWith(*aligned, {1, 1}, g);
    const auto d = directionOf(out);
    REQUIRE(out.diagnostics[0] == 1.0);
    REQUIRE(out.diagnostics[1] == Approx(2.0));
    REQUIRE(d[0] == Approx(2.0));
    REQUIRE(d[1] == Approx(2.0));
  }
  SECTION("opposed rows: rank 1 along (1,−1)/√2, α = B 1 = 0, d = 0") {
    FixedGradients g({{1, 0}, {-1, 0}});
    const auto d = directionOf(stepWith(*aligned, {1, 1}, g));
    REQUIRE(d[0] == Approx(0.0).margin(1e-12));
    REQUIRE(d[1] == Approx(0.0).margin(1e-12));
  }
  SECTION("three tasks with g_c = g_a + g_b: rank 2, finite, d stays in the rows' span") {
    const std::vector<std::vector<double>> rows{{1, 0, 0}, {0, 2, 0}, {1, 2, 0}};
    const AlignedMtlTransform t = alignedMtlTransform(gramOfRows(rows), AlignedMtlScale::kMin);
    REQUIRE(t.rank == 2);
    auto three = attached("{name: aligned_mtl}", makeTasks({"a", "b", "c"}));
    FixedGradients g(rows);
    const auto d = directionOf(stepWith(*three, {1, 1, 1}, g));
    for (double x : d) REQUIRE(std::isfinite(x));
    REQUIRE(d[2] == 0.0);
  }
  SECTION("all-zero gradients: rank 0, d = 0") {
    FixedGradients g({{0, 0}, {0, 0}});
    const StepOutput out = stepWith(*aligned, {1, 1}, g);
    REQUIRE(out.diagnostics[0] == 0.0);
    for (double x : directionOf(out)) REQUIRE(x == 0.0);
  }
}

TEST_CASE("aligned_mtl: the scale modes", "[strategy][aligned_mtl]") {
  // Orthogonal rows of norms 1, 2, 3: λ = (9, 4, 1), d = σ (1, 1, 1).
  const auto tasks = makeTasks({"a", "b", "c"});
  FixedGradients g({{1, 0, 0}, {0, 2, 0}, {0, 0, 3}});
  const std::vector<std::pair<std::string, double>> cases{
      {"min", 1.0}, {"median", 2.0}, {"rmse", std::sqrt(14.0 / 3.0)}};
  for (const auto& [mode, sigma] : cases) {
    auto aligned = attached("{name: aligned_mtl, scale: " + mode + "}", tasks);
    const auto d = directionOf(stepWith(*aligned, {1, 1, 1}, g));
    INFO("scale " << mode);
    for (double x : d) REQUIRE(x == Approx(sigma));
  }
}

TEST_CASE("aligned_mtl: Aligned-MTL-UB works on the representation gradients",
          "[strategy][aligned_mtl]") {
  const auto tasks = makeTasks({"a", "b"});
  auto aligned = attached("{name: aligned_mtl, gradients: representation}", tasks);
  REQUIRE(aligned->needs() == GradientNeed::kRepresentation);
  FixedGradientSource source(torch::eye(2, torch::kFloat64), {},
                             torch::tensor({10.0, 0.0, 0.0, 1.0}, torch::kFloat64).view({2, 2}));
  const StepOutput out = stepWith(*aligned, {1, 1}, source);
  REQUIRE(out.kind == StepOutput::Kind::kRepresentationGradient);
  const auto d = directionOf(out);
  REQUIRE(d[0] == Approx(1.0));
  REQUIRE(d[1] == Approx(1.0));
}

TEST_CASE("aligned_mtl: options", "[strategy][aligned_mtl]") {
  const auto tasks = makeTasks({"a", "b"});
  REQUIRE_THROWS_WITH(
      makeStrategy(yamlNode("{name: aligned_mtl, weights: [1, 2, 3]}"), tasks),
      Catch::Contains("strategy.weights: expected 2 weights (one per task: a, b), got 3"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: aligned_mtl, weights: [1, 0]}"), tasks),
                      Catch::Contains("weights[1] (task b) must be a finite number > 0, got 0"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: aligned_mtl, scale: max}"), tasks),
                      Catch::Contains("'max' is not one of: min, median, rmse"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: aligned_mtl, head_weights: w}"), tasks),
                      Catch::Contains("'w' is not one of: one, alpha"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: aligned_mtl, scael: min}"), tasks),
                      Catch::Contains("unknown key 'scael' (did you mean 'scale'?)"));
  const auto names = makeStrategy(yamlNode("{name: aligned_mtl}"), tasks)->diagnosticNames();
  REQUIRE(names == std::vector<std::string>{"rank", "sigma", "alpha_a", "alpha_b"});
}
