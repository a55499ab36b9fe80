#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "framework/gradients.h"
#include "strategies/nash_mtl.h"
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

}  // namespace

TEST_CASE("nash_mtl: orthogonal gradients give α_i = 1/‖g_i‖", "[strategy][nash_mtl]") {
  const auto tasks = makeTasks({"a", "b"});
  auto nash = attached("{name: nash_mtl, max_norm: 0}", tasks);
  REQUIRE(nash->needs() == GradientNeed::kSharedParameters);
  // G Gᵀ = diag(9, 16): 9 α_1 = 1/α_1, 16 α_2 = 1/α_2.
  FixedGradients g({{3, 0}, {0, 4}});
  const StepOutput out = stepWith(*nash, {1, 1}, g);
  REQUIRE(out.kind == StepOutput::Kind::kSharedGradient);
  const Vec alpha = weightsOf(out);  // float32
  REQUIRE(alpha[0] == Approx(1.0 / 3.0).epsilon(1e-6));
  REQUIRE(alpha[1] == Approx(0.25).epsilon(1e-6));
  // d = α_1 g_1 + α_2 g_2 = (1, 1); g_iᵀd = (3, 4) = 1/α.
  const Vec d = directionOf(out);
  REQUIRE(d[0] == Approx(1.0).epsilon(1e-9));
  REQUIRE(d[1] == Approx(1.0).epsilon(1e-9));
  REQUIRE(nash->diagnosticNames() ==
          std::vector<std::string>{"updated", "solved", "iterations", "residual", "norm"});
  REQUIRE(out.diagnostics[0] == 1.0);  // updated
  REQUIRE(out.diagnostics[1] == 1.0);  // solved
  REQUIRE(out.diagnostics[2] == 1.0);  // one convex problem
  REQUIRE(out.diagnostics[3] < 1e-9);  // residual
  REQUIRE(out.diagnostics[4] == Approx(std::sqrt(2.0)));
}

TEST_CASE("nash_mtl: a dominant gradient does not dominate the direction", "[strategy][nash_mtl]") {
  const auto tasks = makeTasks({"big", "small"});
  auto nash = attached("{name: nash_mtl, max_norm: 0}", tasks);
  // ‖g_1‖ = 10, ‖g_2‖ = 1, cos = 0.6: α_i = 1/(‖g_i‖ √1.6) and
  // d = (u_1 + u_2)/√1.6 = (1.6, 0.8)/√1.6, the bisector of the unit gradients.
  FixedGradients g({{10, 0}, {0.6, 0.8}});
  const StepOutput out = stepWith(*nash, {1, 1}, g);
  const Vec d = directionOf(out);
  REQUIRE(d[0] == Approx(1.6 / std::sqrt(1.6)).epsilon(1e-8));
  REQUIRE(d[1] == Approx(0.8 / std::sqrt(1.6)).epsilon(1e-8));
  // Equal improvement per unit of gradient norm: g_iᵀd/‖g_i‖ = √1.6 for both.
  REQUIRE(dot({10, 0}, d) / 10.0 == Approx(std::sqrt(1.6)));
  REQUIRE(dot({0.6, 0.8}, d) == Approx(std::sqrt(1.6)));
}

TEST_CASE("nash_mtl: scaling one task's gradient leaves the direction unchanged",
          "[strategy][nash_mtl]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  std::vector<Vec> rows = randomRows(3, 6, 11);
  auto first = attached("{name: nash_mtl, max_norm: 0}", tasks);
  FixedGradients g(rows);
  const StepOutput out = stepWith(*first, {1, 1, 1}, g);
  for (double s : {7.0, 0.01}) {
    INFO("scale " << s);
    std::vector<Vec> scaledRows = rows;
    for (double& v : scaledRows[1]) v *= s;
    auto second = attached("{name: nash_mtl, max_norm: 0}", tasks);
    FixedGradients gs(scaledRows);
    const StepOutput scaled = stepWith(*second, {1, 1, 1}, gs);
    const Vec d = directionOf(out), ds = directionOf(scaled);
    for (std::size_t k = 0; k < d.size(); ++k)
      REQUIRE(ds[k] == Approx(d[k]).epsilon(1e-7).margin(1e-12));
    // The task's weight absorbs the scale: α_b → α_b / s.
    REQUIRE(scaled.weights[1].item<double>() * s ==
            Approx(out.weights[1].item<double>()).epsilon(1e-5));
  }
}

TEST_CASE("nash_mtl: a random three-task case satisfies G Gᵀ α = 1/α", "[strategy][nash_mtl]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  auto nash = attached("{name: nash_mtl, max_norm: 0}", tasks);
  const std::vector<Vec> rows = randomRows(3, 8, 4);
  FixedGradients g(rows);
  const StepOutput out = stepWith(*nash, {1, 1, 1}, g);
  const Vec d = directionOf(out);
  const Vec alpha = dynamic_cast<NashMtl&>(unwrapStrategy(*nash)).alpha();
  // (G Gᵀ α)_i = g_iᵀd.
  for (std::size_t i = 0; i < 3; ++i)
    REQUIRE(dot(rows[i], d) == Approx(1.0 / alpha[i]).epsilon(1e-8));
  REQUIRE(out.diagnostics[3] < 1e-8);
}

TEST_CASE("nash_mtl: clipping to max_norm", "[strategy][nash_mtl]") {
  const auto tasks = makeTasks({"a", "b"});
  FixedGradients g({{3, 0}, {0, 4}});  // d = (1, 1), ‖d‖ = √2
  SECTION("default max_norm 1: d · 1/(√2 + 1e-6), as torch's clip_grad_norm_") {
    auto nash = attached("{name: nash_mtl}", tasks);
    const StepOutput out = stepWith(*nash, {1, 1}, g);
    const Vec d = directionOf(out);
    REQUIRE(d[0] == Approx(1.0 / (std::sqrt(2.0) + 1e-6)).epsilon(1e-12));
    REQUIRE(d[1] == Approx(1.0 / (std::sqrt(2.0) + 1e-6)).epsilon(1e-12));
    REQUIRE(out.diagnostics[4] == Approx(std::sqrt(2.0)));  // the norm before clipping
    // The heads' weights are not clipped.
    REQUIRE(weightsOf(out)[0] == Approx(1.0 / 3.0).epsilon(1e-6));
  }
  SECTION("a norm below max_norm is left alone") {
    auto nash = attached("{name: nash_mtl, max_norm: 2}", tasks);
    const Vec d = directionOf(stepWith(*nash, {1, 1}, g));
    REQUIRE(d[0] == Approx(1.0).epsilon(1e-9));
  }
}

TEST_CASE("nash_mtl: opposed gradients keep the previous α", "[strategy][nash_mtl]") {
  const auto tasks = makeTasks({"a", "b"});
  auto nash = attached("{name: nash_mtl, max_norm: 0}", tasks);
  FixedGradients g({{1, 0}, {-1, 0}});
  const StepOutput out = stepWith(*nash, {1, 1}, g);
  REQUIRE(weightsOf(out) == Vec{1.0, 1.0});  // the initial α
  REQUIRE(out.diagnostics[1] == 0.0);        // not solved
  const Vec d = directionOf(out);
  REQUIRE(d[0] == 0.0);
  REQUIRE(d[1] == 0.0);
  // A solvable step afterwards proceeds normally.
  g.set({{2, 0}, {0, 1}});
  REQUIRE(weightsOf(stepWith(*nash, {1, 1}, g, 1))[0] == Approx(0.5).epsilon(1e-6));
}

TEST_CASE("nash_mtl: update_weights_every reuses the last α", "[strategy][nash_mtl]") {
  const auto tasks = makeTasks({"a", "b"});
  SECTION("max_norm 0: the reusing steps are Σ α_i L_i without per-task gradients") {
    auto nash = attached("{name: nash_mtl, update_weights_every: 3, max_norm: 0}", tasks);
    FixedGradients g({{3, 0}, {0, 4}});
    stepWith(*nash, {1, 1}, g, 0);
    REQUIRE(g.sharedCalls == 1);
    g.set({{1, 0}, {0, 1}});  // would give α = (1, 1)
    for (int step = 1; step < 3; ++step) {
      const StepOutput out = stepWith(*nash, {2, 5}, g, step);
      REQUIRE(out.kind == StepOutput::Kind::kObjective);
      REQUIRE(out.objective.item<double>() == Approx(2.0 / 3.0 + 5.0 / 4.0).epsilon(1e-9));
      REQUIRE(out.diagnostics == Vec{0, 0, 0, 0, 0});
    }
    REQUIRE(g.sharedCalls == 1);
    // Step 3 solves again, on the new gradients.
    const StepOutput out = stepWith(*nash, {1, 1}, g, 3);
    REQUIRE(out.kind == StepOutput::Kind::kSharedGradient);
    REQUIRE(g.sharedCalls == 2);
    REQUIRE(weightsOf(out)[0] == Approx(1.0).epsilon(1e-6));
    REQUIRE(out.diagnostics[0] == 1.0);
  }
  SECTION("with clipping the reusing step combines the new gradients with the old α") {
    auto nash = attached("{name: nash_mtl, update_weights_every: 2, max_norm: 1}", tasks);
    FixedGradients g({{3, 0}, {0, 4}});
    stepWith(*nash, {1, 1}, g, 0);
    g.set({{0.3, 0}, {0, 0.8}});  // α = (1/3, 1/4) → d = (0.1, 0.2), below max_norm
    const StepOutput out = stepWith(*nash, {1, 1}, g, 1);
    REQUIRE(out.kind == StepOutput::Kind::kSharedGradient);
    const Vec d = directionOf(out);
    REQUIRE(d[0] == Approx(0.1).epsilon(1e-9));
    REQUIRE(d[1] == Approx(0.2).epsilon(1e-9));
    REQUIRE(out.diagnostics[0] == 0.0);  // not updated
    REQUIRE(out.diagnostics[4] == Approx(std::sqrt(0.05)));
  }
}

TEST_CASE("nash_mtl: the next solve starts from the last α", "[strategy][nash_mtl]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  auto nash = attached("{name: nash_mtl}", tasks);
  FixedGradients g(randomRows(3, 5, 2));
  const StepOutput first = stepWith(*nash, {1, 1, 1}, g, 0);
  REQUIRE(first.diagnostics[2] >= 1.0);
  // The same gradients again: the warm start already solves the system.
  const StepOutput second = stepWith(*nash, {1, 1, 1}, g, 1);
  REQUIRE(second.diagnostics[1] == 1.0);
  REQUIRE(second.diagnostics[2] == 0.0);
  REQUIRE(weightsOf(second) == weightsOf(first));
}

TEST_CASE("nash_mtl: a restored strategy continues exactly", "[strategy][nash_mtl]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  const std::string yaml = "{name: nash_mtl, update_weights_every: 2, max_norm: 0}";
  auto first = attached(yaml, tasks);
  std::vector<FixedGradients> sources;
  for (unsigned seed = 0; seed < 6; ++seed) sources.emplace_back(randomRows(3, 5, 20 + seed));
  for (int step = 0; step < 3; ++step) stepWith(*first, {1, 2, 3}, sources[step], step);
  const StrategyState saved = first->state();
  REQUIRE(saved.at("step").item<int64_t>() == 3);
  auto second = attached(yaml, tasks);
  second->loadState(saved);
  REQUIRE(dynamic_cast<NashMtl&>(unwrapStrategy(*second)).alpha() == dynamic_cast<NashMtl&>(unwrapStrategy(*first)).alpha());
  for (int step = 3; step < 6; ++step) {
    const StepOutput a = stepWith(*first, {1, 2, 3}, sources[step], step);
    const StepOutput b = stepWith(*second, {1, 2, 3}, sources[step], step);
    REQUIRE(a.kind == b.kind);  // step 3 reuses α, 4 solves, 5 reuses
    REQUIRE(weightsOf(a) == weightsOf(b));
    REQUIRE(a.diagnostics == b.diagnostics);
    if (a.kind == StepOutput::Kind::kObjective) {
      REQUIRE(a.objective.item<double>() == b.objective.item<double>());
    } else {
      REQUIRE(directionOf(a) == directionOf(b));
    }
  }
  SECTION("a checkpoint for other tasks is refused") {
    auto two = attached(yaml, makeTasks({"a", "b"}));
    REQUIRE_THROWS_WITH(two->loadState(saved),
                        Catch::Contains("'alpha' has 3 entries, expected 2"));
    REQUIRE_THROWS_WITH(two->loadState({}), Catch::Contains("lacks 'alpha'"));
  }
}

TEST_CASE("nash_mtl: representation gradients", "[strategy][nash_mtl]") {
  const auto tasks = makeTasks({"a", "b"});
  auto nash = attached("{name: nash_mtl, gradients: representation, max_norm: 0}", tasks);
  REQUIRE(nash->needs() == GradientNeed::kRepresentation);
  FixedGradientSource source(torch::tensor({1.0, 0.0, 0.0, 1.0}, torch::kFloat64).view({2, 2}), {},
                             torch::tensor({2.0, 0.0, 0.0, 0.5}, torch::kFloat64).view({2, 2}));
  const StepOutput out = stepWith(*nash, {1, 1}, source);
  REQUIRE(out.kind == StepOutput::Kind::kRepresentationGradient);
  // α = (1/2, 2) from the representation matrix: d = (1, 1).
  const Vec d = directionOf(out);
  REQUIRE(d[0] == Approx(1.0).epsilon(1e-9));
  REQUIRE(d[1] == Approx(1.0).epsilon(1e-9));
}

TEST_CASE("nash_mtl: options are validated", "[strategy][nash_mtl]") {
  const auto tasks = makeTasks({"a", "b"});
  REQUIRE_THROWS_AS(makeStrategy(yamlNode("{name: nash_mtl, update_weights_every: 0}"), tasks),
                    ConfigError);
  REQUIRE_THROWS_WITH(
      makeStrategy(yamlNode("{name: nash_mtl, update_weights_every: 0}"), tasks),
      Catch::Contains("strategy.update_weights_every: 0 is out of range: must be >= 1"));
  REQUIRE_THROWS_WITH(
      makeStrategy(yamlNode("{name: nash_mtl, optim_niter: 0}"), tasks),
      Catch::Contains("strategy.optim_niter: 0 is out of range: must be in [1, 100000]"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: nash_mtl, max_norm: -1}"), tasks),
                      Catch::Contains("strategy.max_norm: -1 is out of range: must be >= 0"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: nash_mtl, max_norm: big}"), tasks),
                      Catch::Contains("strategy.max_norm: expected a number"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: nash_mtl, gradients: last}"), tasks),
                      Catch::Contains("is not one of: parameters, representation"));
  REQUIRE_THROWS_WITH(
      makeStrategy(yamlNode("{name: nash_mtl, max_nrom: 1}"), tasks),
      Catch::Contains("strategy.max_nrom: unknown key 'max_nrom' (did you mean 'max_norm'?)"));
}
