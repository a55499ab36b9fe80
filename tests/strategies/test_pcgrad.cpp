#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <set>

#include "framework/gradients.h"
#include "strategies/pcgrad.h"
#include "strategies/registry.h"
#include "strategies/support.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;

namespace {

using Vec = std::vector<double>;
double dot(const Vec& a, const Vec& b) {
  double s = 0.0;
  for (std::size_t k = 0; k < a.size(); ++k) s += a[k] * b[k];
  return s;
}

/// The paper's Algorithm 1 on explicit vectors, for one given order per task.
Vec naivePcGrad(const std::vector<Vec>& g, const std::vector<std::vector<std::size_t>>& orders) {
  Vec sum(g[0].size(), 0.0);
  for (std::size_t i = 0; i < g.size(); ++i) {
    Vec pc = g[i];
    for (std::size_t j : orders[i]) {
      const double p = dot(pc, g[j]);
      if (p < 0) {
        for (std::size_t k = 0; k < pc.size(); ++k) pc[k] -= p / dot(g[j], g[j]) * g[j][k];
      }
    }
    for (std::size_t k = 0; k < pc.size(); ++k) sum[k] += pc[k];
  }
  return sum;
}

}  // namespace

TEST_CASE("pcgrad: hand-derived pairs", "[strategy][pcgrad]") {
  const auto tasks = makeTasks({"a", "b"});
  auto pcgrad = attached("{name: pcgrad}", tasks);
  REQUIRE(pcgrad->needs() == GradientNeed::kSharedParameters);
  SECTION("non-conflicting gradients: the plain sum") {
    FixedGradients g({{1, 0}, {1, 1}});  // dot = 1 ≥ 0
    const StepOutput out = stepWith(*pcgrad, {1, 1}, g);
    REQUIRE(out.kind == StepOutput::Kind::kSharedGradient);
    REQUIRE(directionOf(out) == Vec{2.0, 1.0});
    REQUIRE(out.diagnostics == Vec{0.0, 1.0, 1.0});  // no projection; weights (1, 1)
    REQUIRE(weightsOf(out) == Vec{1.0, 1.0});
  }
  SECTION("a conflicting pair: each projected onto the other's normal plane") {
    // g_a = (1,0), g_b = (−1,1), g_a·g_b = −1.
    // g_a^PC = (1,0) + (1/2)(−1,1) = (0.5, 0.5); g_b^PC = (−1,1) + (1/1)(1,0) = (0, 1).
    FixedGradients g({{1, 0}, {-1, 1}});
    const StepOutput out = stepWith(*pcgrad, {1, 1}, g);
    const auto d = directionOf(out);
    REQUIRE(d[0] == Approx(0.5));
    REQUIRE(d[1] == Approx(1.5));
    // Two projections; d = 2·g_a + 1.5·g_b.
    REQUIRE(out.diagnostics[0] == 2.0);
    REQUIRE(out.diagnostics[1] == Approx(2.0));
    REQUIRE(out.diagnostics[2] == Approx(1.5));
  }
  SECTION("opposed gradients cancel") {
    // g_a^PC = (1,0) − (−1)(−1,0) = 0, likewise g_b^PC.
    FixedGradients g({{1, 0}, {-1, 0}});
    const auto d = directionOf(stepWith(*pcgrad, {1, 1}, g));
    REQUIRE(d[0] == Approx(0.0).margin(1e-12));
    REQUIRE(d[1] == Approx(0.0).margin(1e-12));
  }
  SECTION("a dominant gradient") {
    // g_a = (10,0), g_b = (−1,1), dot −10: g_a^PC = (10,0) + 5(−1,1) = (5,5);
    // g_b^PC = (−1,1) + 0.1(10,0) = (0,1); d = (5, 6).
    FixedGradients g({{10, 0}, {-1, 1}});
    const auto d = directionOf(stepWith(*pcgrad, {1, 1}, g));
    REQUIRE(d[0] == Approx(5.0));
    REQUIRE(d[1] == Approx(6.0));
  }
}

TEST_CASE("pcgrad: three tasks follow one of the paper's orders, deterministically per seed",
          "[strategy][pcgrad]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  // Task a's result depends on the order: (b, c) gives (0.2, −0.2), (c, b) gives (0.2, 0.1).
  const std::vector<Vec> rows{{1, 0}, {-1, 2}, {-1, -1}};
  std::vector<Vec> candidates;
  for (int mask = 0; mask < 8; ++mask) {
    std::vector<std::vector<std::size_t>> orders{{1, 2}, {0, 2}, {0, 1}};
    for (std::size_t i = 0; i < 3; ++i) {
      if (mask & (1 << i)) std::reverse(orders[i].begin(), orders[i].end());
    }
    candidates.push_back(naivePcGrad(rows, orders));
  }
  auto first = attached("{name: pcgrad}", tasks, 7);
  auto second = attached("{name: pcgrad}", tasks, 7);
  auto other = attached("{name: pcgrad}", tasks, 8);
  FixedGradients g(rows);
  std::set<std::pair<double, double>> seen;
  bool differs = false;
  for (int64_t step = 0; step < 40; ++step) {
    const auto d = directionOf(stepWith(*first, {1, 1, 1}, g, step));
    REQUIRE(directionOf(stepWith(*second, {1, 1, 1}, g, step)) == d);
    if (directionOf(stepWith(*other, {1, 1, 1}, g, step)) != d) differs = true;
    const bool matches = std::any_of(candidates.begin(), candidates.end(), [&](const Vec& c) {
      return std::abs(c[0] - d[0]) < 1e-12 && std::abs(c[1] - d[1]) < 1e-12;
    });
    REQUIRE(matches);
    seen.insert({std::round(d[0] * 1e9), std::round(d[1] * 1e9)});
  }
  REQUIRE(seen.size() > 1);  // the order is random from step to step
  REQUIRE(differs);          // and depends on the seed
}

TEST_CASE("pcgrad: representation gradients and options", "[strategy][pcgrad]") {
  const auto tasks = makeTasks({"a", "b"});
  auto pcgrad = attached("{name: pcgrad, gradients: representation}", tasks);
  REQUIRE(pcgrad->needs() == GradientNeed::kRepresentation);
  FixedGradientSource source(torch::zeros({2, 2}, torch::kFloat64), {},
                             torch::tensor({1.0, 0.0, -1.0, 1.0}, torch::kFloat64).view({2, 2}));
  const StepOutput out = stepWith(*pcgrad, {1, 1}, source);
  REQUIRE(out.kind == StepOutput::Kind::kRepresentationGradient);
  REQUIRE(directionOf(out)[1] == Approx(1.5));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: pcgrad, reduction: mean}"), tasks),
                      Catch::Contains("reduction"));
  FixedGradients nan({{std::nan(""), 0}, {0, 1}});
  REQUIRE_THROWS_WITH(stepWith(*attached("{name: pcgrad}", tasks), {1, 1}, nan),
                      Catch::Contains("NaN or infinite"));
}
