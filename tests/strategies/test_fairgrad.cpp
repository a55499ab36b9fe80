#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "strategies/registry.h"
#include "strategies/support.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;

namespace {

using Vec = std::vector<double>;

std::vector<Vec> randomRows(int rows, int cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<Vec> out(rows, Vec(cols));
  for (auto& row : out) {
    for (double& v : row) v = normal(rng);
  }
  return out;
}

double dot(const Vec& a, const Vec& b) {
  double s = 0.0;
  for (std::size_t k = 0; k < a.size(); ++k) s += a[k] * b[k];
  return s;
}

/// w from the diagnostics (after solved, iterations, residual, norm).
Vec wOf(const StepOutput& out) { return Vec(out.diagnostics.begin() + 4, out.diagnostics.end()); }

}  // namespace

TEST_CASE("fairgrad: orthogonal gradients, w_i = ‖g_i‖^{−2α/(α+1)}", "[strategy][fairgrad]") {
  const auto tasks = makeTasks({"a", "b"});
  FixedGradients g({{8, 0}, {0, 1}});
  SECTION("α = 2: w = (8^{−4/3}, 1) = (1/16, 1), d = (0.5, 1)") {
    auto fair = attached("{name: fairgrad, alpha: 2, max_norm: 0}", tasks);
    REQUIRE(fair->needs() == GradientNeed::kSharedParameters);
    const StepOutput out = stepWith(*fair, {1, 1}, g);
    REQUIRE(out.kind == StepOutput::Kind::kSharedGradient);
    const Vec w = wOf(out);
    REQUIRE(w[0] == Approx(1.0 / 16.0).epsilon(1e-10));
    REQUIRE(w[1] == Approx(1.0).epsilon(1e-10));
    const Vec d = directionOf(out);
    REQUIRE(d[0] == Approx(0.5).epsilon(1e-10));
    REQUIRE(d[1] == Approx(1.0).epsilon(1e-10));
    // g_iᵀd = (4, 1) = w_i^{−1/2}.
    REQUIRE(out.diagnostics[0] == 1.0);
    REQUIRE(out.diagnostics[2] < 1e-10);
    REQUIRE(out.diagnostics[3] == Approx(std::sqrt(1.25)));
    // Heads get their own unweighted gradients by default.
    REQUIRE(weightsOf(out) == Vec{1.0, 1.0});
    REQUIRE(fair->diagnosticNames() ==
            std::vector<std::string>{"solved", "iterations", "residual", "norm", "w_a", "w_b"});
  }
  SECTION("α = 1: w = 1/‖g_i‖ = (1/8, 1), Nash-MTL's weights") {
    auto fair = attached("{name: fairgrad, alpha: 1, max_norm: 0}", tasks);
    const Vec w = wOf(stepWith(*fair, {1, 1}, g));
    REQUIRE(w[0] == Approx(0.125).epsilon(1e-10));
    REQUIRE(w[1] == Approx(1.0).epsilon(1e-10));
  }
  SECTION("default max_norm 1 clips d = (0.5, 1) by 1/(√1.25 + 1e-6)") {
    auto fair = attached("{name: fairgrad, alpha: 2}", tasks);
    const Vec d = directionOf(stepWith(*fair, {1, 1}, g));
    REQUIRE(d[0] == Approx(0.5 / (std::sqrt(1.25) + 1e-6)).epsilon(1e-10));
    REQUIRE(d[1] == Approx(1.0 / (std::sqrt(1.25) + 1e-6)).epsilon(1e-10));
  }
  SECTION("scale_by_tasks multiplies d by T before clipping; head_weights: w") {
    auto fair = attached(
        "{name: fairgrad, alpha: 2, max_norm: 0, scale_by_tasks: true, head_weights: w}", tasks);
    const StepOutput out = stepWith(*fair, {1, 1}, g);
    const Vec d = directionOf(out);
    REQUIRE(d[0] == Approx(1.0).epsilon(1e-10));
    REQUIRE(d[1] == Approx(2.0).epsilon(1e-10));
    const Vec weights = weightsOf(out);  // float32
    REQUIRE(weights[0] == Approx(0.0625).epsilon(1e-6));
    REQUIRE(weights[1] == Approx(1.0).epsilon(1e-6));
  }
}

TEST_CASE("fairgrad: two unit gradients at cosine ρ share w = (1+ρ)^{−α/(α+1)}",
          "[strategy][fairgrad]") {
  const auto tasks = makeTasks({"a", "b"});
  auto fair = attached("{name: fairgrad, alpha: 3, max_norm: 0}", tasks);
  FixedGradients g({{1, 0}, {0.5, std::sqrt(0.75)}});
  const Vec w = wOf(stepWith(*fair, {1, 1}, g));
  REQUIRE(w[0] == Approx(std::pow(1.5, -0.75)).epsilon(1e-10));
  REQUIRE(w[1] == Approx(std::pow(1.5, -0.75)).epsilon(1e-10));
}

TEST_CASE("fairgrad: alpha 1 gives nash_mtl's direction", "[strategy][fairgrad]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  for (unsigned seed : {3u, 8u}) {
    for (const std::string clip : {"", ", max_norm: 0"}) {
      INFO("seed " << seed << clip);
      FixedGradients g(randomRows(3, 7, seed));
      auto fair = attached("{name: fairgrad, alpha: 1" + clip + "}", tasks);
      auto nash = attached("{name: nash_mtl" + clip + "}", tasks);
      const StepOutput fo = stepWith(*fair, {1, 1, 1}, g);
      const StepOutput no = stepWith(*nash, {1, 1, 1}, g);
      REQUIRE(fo.diagnostics[0] == 1.0);
      REQUIRE(no.diagnostics[1] == 1.0);
      const Vec fd = directionOf(fo), nd = directionOf(no);
      for (std::size_t k = 0; k < fd.size(); ++k) REQUIRE(fd[k] == Approx(nd[k]).epsilon(1e-8));
    }
  }
}

TEST_CASE("fairgrad: a random case solves G Gᵀ w = w^{−1/α}", "[strategy][fairgrad]") {
  const auto tasks = makeTasks({"a", "b", "c", "d"});
  auto fair = attached("{name: fairgrad, alpha: 2, max_norm: 0}", tasks);
  const std::vector<Vec> rows = randomRows(4, 9, 5);
  FixedGradients g(rows);
  const StepOutput out = stepWith(*fair, {1, 1, 1, 1}, g);
  REQUIRE(out.diagnostics[0] == 1.0);
  REQUIRE(out.diagnostics[2] < 1e-10);
  const Vec w = wOf(out), d = directionOf(out);
  // (G Gᵀ w)_i = g_iᵀd = w_i^{−1/2}.
  for (std::size_t i = 0; i < 4; ++i)
    REQUIRE(dot(rows[i], d) == Approx(std::pow(w[i], -0.5)).epsilon(1e-9));
}

TEST_CASE("fairgrad: larger alpha equalises the tasks' improvements (towards max-min)",
          "[strategy][fairgrad]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  // Nearly orthogonal gradients of unequal norms: (G Gᵀ)⁻¹ 1 > 0, so the
  // max-min limit (equal g_iᵀd) is reached with positive weights. Simulated:
  // the max/min ratio of g_iᵀd is 5.10, 3.80, 2.66, 1.40, 1.05 for the α below.
  const std::vector<Vec> rows{{2, 0, 0}, {0.2, 1, 0}, {0.1, 0.1, 0.5}};
  FixedGradients g(rows);
  double previousSpread = 1e300;
  for (double alpha : {0.5, 1.0, 2.0, 10.0, 100.0}) {
    INFO("alpha " << alpha);
    auto fair =
        attached("{name: fairgrad, max_norm: 0, alpha: " + std::to_string(alpha) + "}", tasks);
    const Vec d = directionOf(stepWith(*fair, {1, 1, 1}, g));
    Vec improvements;
    for (const Vec& row : rows) improvements.push_back(dot(row, d));
    const double spread = *std::max_element(improvements.begin(), improvements.end()) /
                          *std::min_element(improvements.begin(), improvements.end());
    REQUIRE(spread < previousSpread);
    previousSpread = spread;
  }
  REQUIRE(previousSpread < 1.1);  // α = 100: g_iᵀd nearly equal
}

TEST_CASE("fairgrad: degenerate gradients", "[strategy][fairgrad]") {
  const auto tasks = makeTasks({"a", "b"});
  auto fair = attached("{name: fairgrad, alpha: 2, max_norm: 0}", tasks);
  SECTION("a zero gradient takes no part: w = (‖g_a‖^{−4/3}, 0)") {
    FixedGradients g({{8, 0}, {0, 0}});
    const StepOutput out = stepWith(*fair, {1, 1}, g);
    REQUIRE(out.diagnostics[0] == 1.0);
    const Vec w = wOf(out);
    REQUIRE(w[0] == Approx(1.0 / 16.0).epsilon(1e-10));
    REQUIRE(w[1] == 0.0);
    REQUIRE(directionOf(out)[0] == Approx(0.5).epsilon(1e-10));
  }
  SECTION("every gradient zero: d = 0, w = 1/T") {
    FixedGradients g({{0, 0}, {0, 0}});
    const StepOutput out = stepWith(*fair, {1, 1}, g);
    REQUIRE(out.diagnostics[0] == 0.0);
    REQUIRE(wOf(out) == Vec{0.5, 0.5});
    REQUIRE(directionOf(out) == Vec{0.0, 0.0});
  }
  SECTION("opposed gradients have no solution: equal large weights, d = 0") {
    FixedGradients g({{1, 0}, {-1, 0}});
    const StepOutput out = stepWith(*fair, {1, 1}, g);
    REQUIRE(out.diagnostics[0] == 0.0);
    const Vec w = wOf(out);
    REQUIRE(w[0] == Approx(w[1]).epsilon(1e-12));
    REQUIRE(w[0] > 100.0);
    for (double v : directionOf(out)) REQUIRE(std::abs(v) < 1e-9);
  }
  SECTION("unequal opposed gradients: d ≈ 0, not the mean gradient (−0.5, 0)") {
    FixedGradients g({{1, 0}, {-2, 0}});
    const StepOutput out = stepWith(*fair, {1, 1}, g);
    REQUIRE(out.diagnostics[0] == 0.0);
    REQUIRE(std::abs(directionOf(out)[0]) < 1e-2);
  }
}

TEST_CASE("fairgrad: a Pareto-stationary pair leaves the other task's fair direction",
          "[strategy][fairgrad]") {
  // g_a = −g_b cancel; g_c = (0, 2) alone: w_c ‖g_c‖² = w_c^{−1/α} gives
  // w_c = ‖g_c‖^{−2α/(α+1)} = 1/2 at α = 1 and d = w_c g_c = (0, 1). (Newton's
  // iterates run off along w_a = w_b until the relative residual, dominated by
  // w_c's equation, passes its test, so this may count as solved.)
  const auto tasks = makeTasks({"a", "b", "c"});
  auto fair = attached("{name: fairgrad, alpha: 1, max_norm: 0}", tasks);
  FixedGradients g({{3, 0}, {-3, 0}, {0, 2}});
  const StepOutput out = stepWith(*fair, {1, 1, 1}, g);
  const Vec d = directionOf(out);
  REQUIRE(std::abs(d[0]) < 1e-6);
  REQUIRE(d[1] == Approx(1.0).epsilon(1e-4));
  REQUIRE(wOf(out)[2] == Approx(0.5).epsilon(1e-4));
}

TEST_CASE("fairgrad: options are validated", "[strategy][fairgrad]") {
  const auto tasks = makeTasks({"a", "b"});
  REQUIRE_THROWS_AS(makeStrategy(yamlNode("{name: fairgrad, alpha: 0}"), tasks), ConfigError);
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: fairgrad, alpha: 0}"), tasks),
                      Catch::Contains("strategy.alpha: 0 is out of range: must be in [0.01, 100]"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: fairgrad, max_iterations: 0}"), tasks),
                      Catch::Contains("strategy.max_iterations: 0 is out of range"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: fairgrad, head_weights: alpha}"), tasks),
                      Catch::Contains("'alpha' is not one of: one, w"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: fairgrad, scale_by_tasks: 2}"), tasks),
                      Catch::Contains("strategy.scale_by_tasks: expected true or false"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: fairgrad, alpah: 2}"), tasks),
                      Catch::Contains("unknown key 'alpah' (did you mean 'alpha'?)"));
}
