#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "framework/gradients.h"
#include "strategies/gradvac.h"
#include "strategies/registry.h"
#include "strategies/support.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;

namespace {

GradVac& asGradVac(Strategy& strategy) { return dynamic_cast<GradVac&>(unwrapStrategy(strategy)); }

using Vec = std::vector<double>;
using Matrix = std::vector<Vec>;

double dot(const Vec& a, const Vec& b) {
  double s = 0.0;
  for (std::size_t k = 0; k < a.size(); ++k) s += a[k] * b[k];
  return s;
}
double cosine(const Vec& a, const Vec& b) { return dot(a, b) / std::sqrt(dot(a, a) * dot(b, b)); }

/// For two tasks, g_a' and g_b' from the effective weights (1 + w_ba, 1 + w_ab):
/// g_a' = g_a + w_ab g_b, g_b' = g_b + w_ba g_a.
std::pair<Vec, Vec> modifiedPair(const StepOutput& out, const Vec& ga, const Vec& gb) {
  const double wab = out.diagnostics[2] - 1.0, wba = out.diagnostics[1] - 1.0;
  Vec a(ga.size()), b(gb.size());
  for (std::size_t k = 0; k < ga.size(); ++k) {
    a[k] = ga[k] + wab * gb[k];
    b[k] = gb[k] + wba * ga[k];
  }
  return {a, b};
}

/// Algorithm 1 on explicit vectors for given orders; updates `targets`.
Vec naiveGradVac(const Matrix& g, const std::vector<std::vector<std::size_t>>& orders,
                 Matrix& targets, double beta) {
  Vec sum(g[0].size(), 0.0);
  for (std::size_t i = 0; i < g.size(); ++i) {
    Vec v = g[i];
    for (std::size_t j : orders[i]) {
      const double phi = cosine(v, g[j]);
      const double t = targets[i][j];
      if (phi < t) {
        const double w = std::sqrt(dot(v, v)) *
                         (t * std::sqrt(1 - phi * phi) - phi * std::sqrt(1 - t * t)) /
                         (std::sqrt(dot(g[j], g[j])) * std::sqrt(1 - t * t));
        for (std::size_t k = 0; k < v.size(); ++k) v[k] += w * g[j][k];
      }
      targets[i][j] = (1 - beta) * t + beta * phi;
    }
    for (std::size_t k = 0; k < v.size(); ++k) sum[k] += v[k];
  }
  return sum;
}

}  // namespace

TEST_CASE("gradvac: hand-derived pairs with the initial targets 0", "[strategy][gradvac]") {
  const auto tasks = makeTasks({"a", "b"});
  auto gradvac = attached("{name: gradvac}", tasks);
  REQUIRE(gradvac->needs() == GradientNeed::kSharedParameters);
  REQUIRE(gradvac->diagnosticNames() ==
          std::vector<std::string>{"corrections", "weight_a", "weight_b"});
  SECTION("orthogonal gradients: the plain sum, the targets stay 0") {
    FixedGradients g({{1, 0}, {0, 1}});
    const StepOutput out = stepWith(*gradvac, {1, 1}, g);
    REQUIRE(out.kind == StepOutput::Kind::kSharedGradient);
    REQUIRE(directionOf(out) == Vec{1.0, 1.0});
    REQUIRE(out.diagnostics == Vec{0.0, 1.0, 1.0});
    REQUIRE(weightsOf(out) == Vec{1.0, 1.0});
    REQUIRE(asGradVac(*gradvac).targets() == Matrix{{0, 0}, {0, 0}});
  }
  SECTION("a positive cosine: the plain sum; the targets move to β·φ = 0.5/√2") {
    FixedGradients g({{1, 0}, {1, 1}});
    const StepOutput out = stepWith(*gradvac, {1, 1}, g);
    REQUIRE(directionOf(out) == Vec{2.0, 1.0});
    REQUIRE(out.diagnostics[0] == 0.0);
    const Matrix& t = asGradVac(*gradvac).targets();
    REQUIRE(t[0][1] == Approx(0.5 / std::sqrt(2.0)));
    REQUIRE(t[1][0] == Approx(0.5 / std::sqrt(2.0)));
    REQUIRE(t[0][0] == 0.0);
  }
  SECTION("a conflicting pair: each raised to cosine 0 with the other, as PCGrad") {
    // φ = −1/√2, target 0: w_ab = ‖g_a‖(0 − φ·1)/(‖g_b‖·1) = (1/√2)/√2 = 1/2,
    // w_ba = √2·(1/√2)/1 = 1: g_a' = (0.5, 0.5), g_b' = (0, 1), d = (0.5, 1.5).
    const Vec ga{1, 0}, gb{-1, 1};
    FixedGradients g({ga, gb});
    const StepOutput out = stepWith(*gradvac, {1, 1}, g);
    const Vec d = directionOf(out);
    REQUIRE(d[0] == Approx(0.5));
    REQUIRE(d[1] == Approx(1.5));
    REQUIRE(out.diagnostics[0] == 2.0);
    REQUIRE(out.diagnostics[1] == Approx(2.0));
    REQUIRE(out.diagnostics[2] == Approx(1.5));
    const auto [a, b] = modifiedPair(out, ga, gb);
    REQUIRE(cosine(a, gb) == Approx(0.0).margin(1e-12));
    REQUIRE(cosine(b, ga) == Approx(0.0).margin(1e-12));
    // The EMA takes the cosine measured before the correction: 0.5·(−1/√2).
    REQUIRE(asGradVac(*gradvac).targets()[0][1] == Approx(-0.5 / std::sqrt(2.0)));
    REQUIRE(asGradVac(*gradvac).targets()[1][0] == Approx(-0.5 / std::sqrt(2.0)));
  }
  SECTION("opposed gradients cancel") {
    // φ = −1: w = ‖g_i‖(0 + 1)/‖g_j‖ = 1, so g_a' = g_b' = 0.
    FixedGradients g({{1, 0}, {-1, 0}});
    const Vec d = directionOf(stepWith(*gradvac, {1, 1}, g));
    REQUIRE(d[0] == Approx(0.0).margin(1e-12));
    REQUIRE(d[1] == Approx(0.0).margin(1e-12));
    REQUIRE(asGradVac(*gradvac).targets()[0][1] == Approx(-0.5));
  }
  SECTION("a dominant gradient") {
    // φ = −1/√2: w_ab = 10·(1/√2)/√2 = 5 → g_a' = (5, 5);
    // w_ba = √2·(1/√2)/10 = 0.1 → g_b' = (0, 1); d = (5, 6).
    FixedGradients g({{10, 0}, {-1, 1}});
    const Vec d = directionOf(stepWith(*gradvac, {1, 1}, g));
    REQUIRE(d[0] == Approx(5.0));
    REQUIRE(d[1] == Approx(6.0));
  }
  SECTION("a zero gradient has no cosine: no correction, no EMA move") {
    FixedGradients g({{0, 0}, {-1, 1}});
    const StepOutput out = stepWith(*gradvac, {1, 1}, g);
    REQUIRE(directionOf(out) == Vec{-1.0, 1.0});
    REQUIRE(out.diagnostics[0] == 0.0);
    REQUIRE(asGradVac(*gradvac).targets() == Matrix{{0, 0}, {0, 0}});
  }
}

TEST_CASE("gradvac: the EMA over two steps and the exact target cosine, by hand",
          "[strategy][gradvac]") {
  const auto tasks = makeTasks({"a", "b"});
  const double r2 = std::sqrt(2.0), r7 = std::sqrt(7.0);
  SECTION("a negative cosine twice: the second step aims at the target −1/(2√2)") {
    auto gradvac = attached("{name: gradvac}", tasks);
    const Vec ga{1, 0}, gb{-1, 1};
    FixedGradients g({ga, gb});
    stepWith(*gradvac, {1, 1}, g, 0);
    const double target = -1.0 / (2.0 * r2);
    REQUIRE(asGradVac(*gradvac).targets()[0][1] == Approx(target));
    // Step 1: φ = −1/√2 < φ̂, sin φ = 1/√2, sin φ̂ = √(7/8):
    // w_ab = 1·(φ̂/√2 + √(7/8)/√2)/(√2·√(7/8)) = (√7 − 1)/(2√7),
    // w_ba = √2·(same numerator)/(1·√(7/8)) = (√7 − 1)/√7.
    const StepOutput out = stepWith(*gradvac, {1, 1}, g, 1);
    const double wab = (r7 - 1.0) / (2.0 * r7), wba = (r7 - 1.0) / r7;
    REQUIRE(out.diagnostics[0] == 2.0);
    REQUIRE(out.diagnostics[1] == Approx(1.0 + wba));
    REQUIRE(out.diagnostics[2] == Approx(1.0 + wab));
    const Vec d = directionOf(out);  // (1 + w_ba − 1 − w_ab, 1 + w_ab)
    REQUIRE(d[0] == Approx(0.5 - 1.0 / (2.0 * r7)));
    REQUIRE(d[1] == Approx(1.5 - 1.0 / (2.0 * r7)));
    // The corrected gradients meet their targets exactly.
    const auto [a, b] = modifiedPair(out, ga, gb);
    REQUIRE(cosine(a, gb) == Approx(target).epsilon(1e-12));
    REQUIRE(cosine(b, ga) == Approx(target).epsilon(1e-12));
    REQUIRE(dot(a, a) == Approx(4.0 / 7.0));
    // φ̂ ← ½(−1/(2√2)) + ½(−1/√2) = −3/(4√2), from the measured φ.
    const Matrix& t = asGradVac(*gradvac).targets();
    REQUIRE(t[0][1] == Approx(-3.0 / (4.0 * r2)));
    REQUIRE(t[1][0] == Approx(-3.0 / (4.0 * r2)));
    REQUIRE(t[0][0] == 0.0);
    REQUIRE(t[1][1] == 0.0);
  }
  SECTION("a positive target pulls orthogonal gradients together (where PCGrad does nothing)") {
    auto gradvac = attached("{name: gradvac}", tasks);
    FixedGradients aligned({{1, 0}, {1, 1}});
    stepWith(*gradvac, {1, 1}, aligned, 0);  // φ̂ = ½·(1/√2)
    const double target = 1.0 / (2.0 * r2);
    const Vec ga{1, 0}, gb{0, 1};
    FixedGradients orthogonal({ga, gb});
    // φ = 0 < φ̂: w = 1·(φ̂·1 − 0)/(1·√(7/8)) = 1/√7 for both.
    const StepOutput out = stepWith(*gradvac, {1, 1}, orthogonal, 1);
    const Vec d = directionOf(out);
    REQUIRE(d[0] == Approx(1.0 + 1.0 / r7));
    REQUIRE(d[1] == Approx(1.0 + 1.0 / r7));
    const auto [a, b] = modifiedPair(out, ga, gb);
    REQUIRE(cosine(a, gb) == Approx(target).epsilon(1e-12));
    REQUIRE(cosine(b, ga) == Approx(target).epsilon(1e-12));
    REQUIRE(asGradVac(*gradvac).targets()[0][1] == Approx(0.5 * target));  // ½φ̂ + ½·0
  }
  SECTION("ema_update: on_correction (LibMTL) moves a target only when it corrects") {
    auto libmtl = attached("{name: gradvac, ema_update: on_correction, beta: 0.25}", tasks);
    FixedGradients aligned({{1, 0}, {1, 1}});
    stepWith(*libmtl, {1, 1}, aligned, 0);
    REQUIRE(asGradVac(*libmtl).targets() == Matrix{{0, 0}, {0, 0}});
    FixedGradients conflicting({{1, 0}, {-1, 1}});
    stepWith(*libmtl, {1, 1}, conflicting, 1);
    REQUIRE(asGradVac(*libmtl).targets()[0][1] == Approx(-0.25 / r2));
    REQUIRE(asGradVac(*libmtl).targets()[1][0] == Approx(-0.25 / r2));
  }
}

TEST_CASE(
    "gradvac: three tasks follow Algorithm 1 in one of its orders, deterministically per seed",
    "[strategy][gradvac]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  const Matrix rows{{1, 0, 0.5}, {-1, 2, 0}, {-1, -1, 0.25}};
  auto first = attached("{name: gradvac, beta: 0.3}", tasks, 7);
  auto second = attached("{name: gradvac, beta: 0.3}", tasks, 7);
  auto other = attached("{name: gradvac, beta: 0.3}", tasks, 8);
  FixedGradients g(rows);
  Matrix targets(3, Vec(3, 0.0));
  std::set<std::pair<double, double>> seen;
  bool differs = false;
  for (int64_t step = 0; step < 30; ++step) {
    const Vec d = directionOf(stepWith(*first, {1, 1, 1}, g, step));
    REQUIRE(directionOf(stepWith(*second, {1, 1, 1}, g, step)) == d);
    if (directionOf(stepWith(*other, {1, 1, 1}, g, step)) != d) differs = true;
    // The naive algorithm for each of the 8 order choices, from the same targets.
    bool matched = false;
    for (int mask = 0; mask < 8 && !matched; ++mask) {
      std::vector<std::vector<std::size_t>> orders{{1, 2}, {0, 2}, {0, 1}};
      for (std::size_t i = 0; i < 3; ++i) {
        if (mask & (1 << i)) std::reverse(orders[i].begin(), orders[i].end());
      }
      Matrix candidate = targets;
      const Vec c = naiveGradVac(rows, orders, candidate, 0.3);
      bool same = true;
      for (std::size_t k = 0; k < 3; ++k) same = same && std::abs(c[k] - d[k]) < 1e-10;
      for (std::size_t i = 0; i < 3; ++i) {
        for (std::size_t j = 0; j < 3; ++j) {
          same = same && std::abs(candidate[i][j] - asGradVac(*first).targets()[i][j]) < 1e-12;
        }
      }
      if (same) {
        matched = true;
        targets = candidate;
      }
    }
    REQUIRE(matched);
    seen.insert({std::round(d[0] * 1e9), std::round(d[1] * 1e9)});
  }
  REQUIRE(seen.size() > 1);
  REQUIRE(differs);
}

TEST_CASE("gradvac: invariances", "[strategy][gradvac]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  const Matrix rows{{1, 0, 0.5}, {-1, 2, 0}, {-1, -1, 0.25}};
  SECTION("positively homogeneous: scaling every gradient by c scales d by c, targets unchanged") {
    auto plain = attached("{name: gradvac}", tasks, 3);
    auto scaled = attached("{name: gradvac}", tasks, 3);
    Matrix big = rows;
    for (auto& row : big) {
      for (double& v : row) v *= 4.0;
    }
    FixedGradients g(rows), g4(big);
    for (int64_t step = 0; step < 5; ++step) {
      const Vec d = directionOf(stepWith(*plain, {1, 1, 1}, g, step));
      const Vec d4 = directionOf(stepWith(*scaled, {1, 1, 1}, g4, step));
      for (std::size_t k = 0; k < 3; ++k) REQUIRE(d4[k] == Approx(4.0 * d[k]));
    }
    for (std::size_t i = 0; i < 3; ++i) {
      for (std::size_t j = 0; j < 3; ++j) {
        REQUIRE(asGradVac(*scaled).targets()[i][j] ==
                Approx(asGradVac(*plain).targets()[i][j]).margin(1e-12));
      }
    }
  }
  SECTION("the vector added to g_i does not depend on the scale of g_j") {
    // (1,0), (−1,1) gave g_a' = (0.5, 0.5), g_b' = (0, 1). With g_b scaled by
    // 3, w_ab = 1/6 adds the same (−0.5, 0.5) to g_a, so g_a' stays; g_b'
    // scales to (0, 3): d = (0.5, 3.5).
    const auto two = makeTasks({"a", "b"});
    auto gradvac = attached("{name: gradvac}", two);
    FixedGradients g({{1, 0}, {-3, 3}});
    const Vec d = directionOf(stepWith(*gradvac, {1, 1}, g));
    REQUIRE(d[0] == Approx(0.5));
    REQUIRE(d[1] == Approx(3.5));
  }
  SECTION("β = 0 keeps every target at 0: PCGrad, step after step") {
    const auto two = makeTasks({"a", "b"});
    auto gradvac = attached("{name: gradvac, beta: 0}", two);
    auto pcgrad = attached("{name: pcgrad}", two);
    const std::vector<Matrix> steps{{{1, 0}, {-1, 1}}, {{2, 1}, {-1, 3}}, {{1, 1}, {-2, -1}}};
    for (std::size_t s = 0; s < steps.size(); ++s) {
      FixedGradients g(steps[s]);
      const Vec d = directionOf(stepWith(*gradvac, {1, 1}, g, static_cast<int64_t>(s)));
      const Vec p = directionOf(stepWith(*pcgrad, {1, 1}, g, static_cast<int64_t>(s)));
      REQUIRE(d[0] == Approx(p[0]).margin(1e-12));
      REQUIRE(d[1] == Approx(p[1]).margin(1e-12));
    }
    REQUIRE(asGradVac(*gradvac).targets() == Matrix{{0, 0}, {0, 0}});
  }
}

TEST_CASE("gradvac: state round trip", "[strategy][gradvac]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  const Matrix rows{{1, 0, 0.5}, {-1, 2, 0}, {-1, -1, 0.25}};
  FixedGradients g(rows);
  auto original = attached("{name: gradvac}", tasks, 11);
  stepWith(*original, {1, 1, 1}, g, 0);
  stepWith(*original, {1, 1, 1}, g, 1);
  const StrategyState saved = original->state();
  REQUIRE(saved.at("targets").sizes() == torch::IntArrayRef{3, 3});
  REQUIRE(fulcrum::detail::matrixRows(saved.at("targets")) == asGradVac(*original).targets());
  REQUIRE(asGradVac(*original).targets()[0][1] != 0.0);

  auto restored = attached("{name: gradvac}", tasks, 11);
  restored->loadState(saved);
  REQUIRE(asGradVac(*restored).targets() == asGradVac(*original).targets());
  for (int64_t step = 2; step < 5; ++step) {
    REQUIRE(directionOf(stepWith(*restored, {1, 1, 1}, g, step)) ==
            directionOf(stepWith(*original, {1, 1, 1}, g, step)));
  }
  // attach() starts again from targets 0.
  original->attach(makeContext(tasks));
  REQUIRE(asGradVac(*original).targets() == Matrix(3, Vec(3, 0.0)));

  REQUIRE_THROWS_WITH(restored->loadState({}), Catch::Contains("lacks 'targets'"));
  REQUIRE_THROWS_WITH(restored->loadState({{"targets", torch::zeros({2, 2}, torch::kFloat64)}}),
                      Catch::Contains("is 2×2, expected 3×3"));
  REQUIRE_THROWS_WITH(restored->loadState({{"targets", torch::full({3, 3}, 1.5, torch::kFloat64)}}),
                      Catch::Contains("outside the cosine range"));
}

TEST_CASE("gradvac: representation gradients and options", "[strategy][gradvac]") {
  const auto tasks = makeTasks({"a", "b"});
  auto gradvac = attached("{name: gradvac, gradients: representation}", tasks);
  REQUIRE(gradvac->needs() == GradientNeed::kRepresentation);
  FixedGradientSource source(torch::zeros({2, 2}, torch::kFloat64), {},
                             torch::tensor({1.0, 0.0, -1.0, 1.0}, torch::kFloat64).view({2, 2}));
  const StepOutput out = stepWith(*gradvac, {1, 1}, source);
  REQUIRE(out.kind == StepOutput::Kind::kRepresentationGradient);
  REQUIRE(directionOf(out)[1] == Approx(1.5));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: gradvac, beta: 1.5}"), tasks),
                      Catch::Contains("strategy.beta: 1.5 is out of range"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: gradvac, beta: fast}"), tasks),
                      Catch::Contains("strategy.beta"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: gradvac, ema_update: sometimes}"), tasks),
                      Catch::Contains("is not one of: always, on_correction"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: gradvac, betta: 0.1}"), tasks),
                      Catch::Contains("betta"));
  FixedGradients nan({{std::nan(""), 0}, {0, 1}});
  REQUIRE_THROWS_WITH(stepWith(*attached("{name: gradvac}", tasks), {1, 1}, nan),
                      Catch::Contains("NaN or infinite"));
}
