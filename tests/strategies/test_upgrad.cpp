// UPGrad and its lower-bounded QP, on hand-derived gradient matrices.
#include <catch2/catch.hpp>
#include <cmath>

#include "framework/gradients.h"
#include "strategies/box_qp.h"
#include "strategies/registry.h"
#include "strategies/support.h"
#include "strategies/upgrad.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;
using fulcrum::detail::Gram;

namespace {

/// Checks the KKT conditions of min λᵀMλ s.t. λ ≥ u: feasibility, (Mλ)_i ≥ 0,
/// and complementarity (λ_i − u_i)(Mλ)_i = 0.
void requireKkt(const Gram& m, const std::vector<double>& u, const std::vector<double>& lambda) {
  double scale = 0.0;
  for (int64_t i = 0; i < m.n; ++i) scale = std::max(scale, m.at(i, i));
  for (int64_t i = 0; i < m.n; ++i) {
    double g = 0.0;
    for (int64_t j = 0; j < m.n; ++j) g += m.at(i, j) * lambda[static_cast<std::size_t>(j)];
    const double slack = lambda[static_cast<std::size_t>(i)] - u[static_cast<std::size_t>(i)];
    REQUIRE(slack >= -1e-12);
    REQUIRE(g >= -1e-9 * scale);
    REQUIRE(std::abs(slack * g) <=
            1e-9 * scale * (1.0 + std::abs(lambda[static_cast<std::size_t>(i)])));
  }
}

}  // namespace

TEST_CASE("solveLowerBoundedQp: exact on two-variable cases", "[solver][box_qp]") {
  SECTION("conflicting pair M = [[1,−1],[−1,2]], u = e_1: λ = (1, 1/2)") {
    // λ_1 = 1 binds; min over λ_2 ≥ 0 of 1 − 2λ_2 + 2λ_2² gives λ_2 = 1/2.
    const auto s = fulcrum::detail::solveLowerBoundedQp(Gram{2, {1, -1, -1, 2}}, {1, 0});
    REQUIRE(s.converged);
    REQUIRE(s.iterations <= 2);
    REQUIRE(s.lambda[0] == Approx(1.0));
    REQUIRE(s.lambda[1] == Approx(0.5));
  }
  SECTION("the same M, u = e_2: λ = (1, 1)") {
    // λ_2 = 1 binds; min over λ_1 ≥ 0 of λ_1² − 2λ_1 + 2 gives λ_1 = 1.
    const auto s = fulcrum::detail::solveLowerBoundedQp(Gram{2, {1, -1, -1, 2}}, {0, 1});
    REQUIRE(s.lambda[0] == Approx(1.0));
    REQUIRE(s.lambda[1] == Approx(1.0));
  }
  SECTION("no conflict (M ≥ 0 entrywise): λ = u, no iteration") {
    const auto s = fulcrum::detail::solveLowerBoundedQp(Gram{2, {1, 0.5, 0.5, 1}}, {1, 0});
    REQUIRE(s.converged);
    REQUIRE(s.iterations == 0);
    REQUIRE(s.lambda == std::vector<double>{1.0, 0.0});
  }
  SECTION("a singular M = [[1,−1],[−1,1]]: λ = (1, 1), objective 0") {
    const auto s = fulcrum::detail::solveLowerBoundedQp(Gram{2, {1, -1, -1, 1}}, {1, 0});
    REQUIRE(s.converged);
    REQUIRE(s.lambda[0] == Approx(1.0));
    REQUIRE(s.lambda[1] == Approx(1.0));
  }
  SECTION("the zero matrix: λ = u") {
    const auto s = fulcrum::detail::solveLowerBoundedQp(Gram{2, {0, 0, 0, 0}}, {0.5, 0});
    REQUIRE(s.lambda == std::vector<double>{0.5, 0.0});
  }
  SECTION("sizes must agree") {
    REQUIRE_THROWS_WITH(fulcrum::detail::solveLowerBoundedQp(Gram{2, {1, 0, 0, 1}}, {1}),
                        Catch::Contains("disagree in size"));
  }
}

TEST_CASE("solveLowerBoundedQp: KKT on random Gram matrices", "[solver][box_qp]") {
  torch::manual_seed(11);
  for (int trial = 0; trial < 25; ++trial) {
    const int64_t t = 2 + trial % 5;
    // P < T now and then, so that M is singular.
    const torch::Tensor g = torch::randn({t, trial % 3 == 0 ? t - 1 : t + 3}, torch::kFloat64);
    Gram m{t, fulcrum::detail::toDoubles(g.mm(g.t()).reshape({-1}))};
    for (int64_t i = 0; i < t; ++i) {
      std::vector<double> u(static_cast<std::size_t>(t), 0.0);
      u[static_cast<std::size_t>(i)] = 1.0;
      const auto s = fulcrum::detail::solveLowerBoundedQp(m, u);
      INFO("trial " << trial << ", task " << i);
      REQUIRE(s.converged);
      requireKkt(m, u, s.lambda);
    }
  }
}

TEST_CASE("upgrad: non-conflicting gradients give their mean", "[strategy][upgrad]") {
  const auto tasks = makeTasks({"a", "b"});
  auto upgrad = attached("{name: upgrad}", tasks);
  REQUIRE(upgrad->needs() == GradientNeed::kSharedParameters);
  SECTION("g_a·g_b = 1 ≥ 0: every g_i is already in the dual cone, λ̄ = (1/2, 1/2)") {
    FixedGradients g({{1, 0}, {1, 1}});
    const StepOutput out = stepWith(*upgrad, {1, 1}, g);
    REQUIRE(out.kind == StepOutput::Kind::kSharedGradient);
    const auto d = directionOf(out);
    REQUIRE(d[0] == Approx(1.0));
    REQUIRE(d[1] == Approx(0.5));
    // Diagnostics: iterations, λ̄_a, λ̄_b.
    REQUIRE(out.diagnostics[0] == 0.0);
    REQUIRE(out.diagnostics[1] == Approx(0.5));
    REQUIRE(out.diagnostics[2] == Approx(0.5));
    REQUIRE(weightsOf(out) == std::vector<double>{1.0, 1.0});
  }
  SECTION("orthogonal gradients: the mean") {
    FixedGradients g({{3, 0}, {0, 1}});
    const auto d = directionOf(stepWith(*upgrad, {1, 1}, g));
    REQUIRE(d[0] == Approx(1.5));
    REQUIRE(d[1] == Approx(0.5));
  }
}

TEST_CASE("upgrad: conflicting and opposed pairs by hand", "[strategy][upgrad]") {
  const auto tasks = makeTasks({"a", "b"});
  SECTION("g_a = (1,0), g_b = (−1,1): π(g_a) = (1/2,1/2), π(g_b) = (0,1), d = (1/4, 3/4)") {
    // g_a·g_b = −1 < 0: g_a loses its component along g_b, g_a + (1/2) g_b;
    // g_b loses its component along g_a, g_b + g_a. λ̄ = ((1,1/2) + (1,1))/2.
    FixedGradients g({{1, 0}, {-1, 1}});
    auto exact = attached("{name: upgrad, reg_eps: 0, head_weights: lambda}", tasks);
    const StepOutput out = stepWith(*exact, {1, 1}, g);
    const auto d = directionOf(out);
    REQUIRE(d[0] == Approx(0.25));
    REQUIRE(d[1] == Approx(0.75));
    const auto w = weightsOf(out);  // head_weights: lambda
    REQUIRE(w[0] == Approx(1.0));
    REQUIRE(w[1] == Approx(0.75));
    // Neither task is hurt: g_a·d = 1/4, g_b·d = 1/2.
    REQUIRE(d[0] >= 0.0);
    REQUIRE(-d[0] + d[1] == Approx(0.5));
    // TorchJD's default regularisation (reg_eps 1e-4 on M/tr M) moves it only slightly.
    auto regularised = attached("{name: upgrad}", tasks);
    const auto e = directionOf(stepWith(*regularised, {1, 1}, g));
    REQUIRE(e[0] == Approx(0.25).margin(1e-3));
    REQUIRE(e[1] == Approx(0.75).margin(1e-3));
  }
  SECTION("opposed gradients (1,0), (−1,0): both projections are 0, d = 0") {
    FixedGradients g({{1, 0}, {-1, 0}});
    auto exact = attached("{name: upgrad, reg_eps: 0}", tasks);
    const auto d = directionOf(stepWith(*exact, {1, 1}, g));
    REQUIRE(d[0] == Approx(0.0).margin(1e-12));
    REQUIRE(d[1] == Approx(0.0).margin(1e-12));
    auto regularised = attached("{name: upgrad}", tasks);
    const auto e = directionOf(stepWith(*regularised, {1, 1}, g));
    REQUIRE(std::abs(e[0]) < 1e-3);
  }
  SECTION("pref_weights [1, 0]: only g_a's projection, (1/2, 1/2)") {
    FixedGradients g({{1, 0}, {-1, 1}});
    auto preferred = attached("{name: upgrad, reg_eps: 0, pref_weights: [1, 0]}", tasks);
    const auto d = directionOf(stepWith(*preferred, {1, 1}, g));
    REQUIRE(d[0] == Approx(0.5));
    REQUIRE(d[1] == Approx(0.5));
  }
}

TEST_CASE("upgrad: the update conflicts with no task, and scales with G", "[strategy][upgrad]") {
  torch::manual_seed(5);
  const auto tasks = makeTasks({"a", "b", "c", "d"});
  auto exact = attached("{name: upgrad, reg_eps: 0}", tasks);
  auto regularised = attached("{name: upgrad}", tasks);
  for (int trial = 0; trial < 20; ++trial) {
    const torch::Tensor g = torch::randn({4, 7}, torch::kFloat64);
    FixedGradients source(g);
    const torch::Tensor d = stepWith(*exact, {1, 1, 1, 1}, source).direction;
    const double scale = g.norm().item<double>();
    INFO("trial " << trial);
    // G d ≥ 0 up to rounding; with reg_eps the bound is −reg_eps·tr(M)·λ̄_i.
    REQUIRE(g.mv(d).min().item<double>() >= -1e-9 * scale * scale);
    const torch::Tensor e = stepWith(*regularised, {1, 1, 1, 1}, source).direction;
    REQUIRE(g.mv(e).min().item<double>() >= -1e-3 * scale * scale);

    // Linear under scaling: λ̄ does not depend on the scale of G (while
    // tr(c²M) ≥ norm_eps), so d(cG) = c d(G).
    FixedGradients scaled(g * 10.0);
    const torch::Tensor d10 = stepWith(*exact, {1, 1, 1, 1}, scaled).direction;
    REQUIRE(torch::allclose(d10, d * 10.0, 1e-8, 1e-10));
  }
  SECTION("below norm_eps (tr M < 1e-4), TorchJD's rule takes M = 0: d is the mean") {
    FixedGradients tiny({{1e-3, 0, 0, 0}, {-1e-3, 1e-3, 0, 0}, {0, 0, 1e-3, 0}, {0, 0, 0, 1e-3}});
    const auto d = directionOf(stepWith(*regularised, {1, 1, 1, 1}, tiny));
    REQUIRE(d[0] == Approx(0.0).margin(1e-15));
    REQUIRE(d[1] == Approx(0.25e-3));
  }
}

TEST_CASE("upgrad: representation gradients and options", "[strategy][upgrad]") {
  const auto tasks = makeTasks({"a", "b"});
  auto upgrad = attached("{name: upgrad, gradients: representation, reg_eps: 0}", tasks);
  REQUIRE(upgrad->needs() == GradientNeed::kRepresentation);
  FixedGradientSource source(torch::eye(2, torch::kFloat64), {},
                             torch::tensor({1.0, 0.0, -1.0, 1.0}, torch::kFloat64).view({2, 2}));
  const StepOutput out = stepWith(*upgrad, {1, 1}, source);
  REQUIRE(out.kind == StepOutput::Kind::kRepresentationGradient);
  REQUIRE(directionOf(out)[1] == Approx(0.75));

  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: upgrad, pref_weights: [1]}"), tasks),
                      Catch::Contains("strategy.pref_weights: expected 2 preference weights"));
  REQUIRE_THROWS_WITH(
      makeStrategy(yamlNode("{name: upgrad, pref_weights: [1, -1]}"), tasks),
      Catch::Contains("pref_weights[1] (task b) must be a finite number >= 0, got -1"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: upgrad, pref_weights: [0, 0]}"), tasks),
                      Catch::Contains("at least one preference weight must be > 0"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: upgrad, reg_eps: -1}"), tasks),
                      Catch::Contains("strategy.reg_eps: -1 is out of range"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: upgrad, norm_eps: x}"), tasks),
                      Catch::Contains("strategy.norm_eps: expected a number"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: upgrad, head_weights: alpha}"), tasks),
                      Catch::Contains("'alpha' is not one of: one, lambda"));
  const auto names = makeStrategy(yamlNode("{name: upgrad}"), tasks)->diagnosticNames();
  REQUIRE(names == std::vector<std::string>{"iterations", "lambda_a", "lambda_b"});
}
