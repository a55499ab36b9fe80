// DB-MTL, stepped by hand on small fixed gradients and losses.
#include <catch2/catch.hpp>
#include <cmath>

#include "strategies/db_mtl.h"
#include "strategies/registry.h"
#include "strategies/support.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;

namespace {

// ε = 1e-8 inside the logarithm shifts 1/L by ~1e-8 relative: well inside Approx's default.

}  // namespace

TEST_CASE("db_mtl: the first two steps by hand", "[strategy][db_mtl][state]") {
  const auto tasks = makeTasks({"a", "b"});
  auto db = attached("{name: db_mtl}", tasks);
  REQUIRE(db->needs() == GradientNeed::kSharedParameters);

  // Step 1: g = ((2,0), (0,1)), L = (2, 1/2): the log-loss gradients g_i/L_i
  // are (1,0) and (0,2); the EMA from 0 with β = 0.9 gives ĝ = (0.1,0), (0,0.2).
  // Norms (0.1, 0.2): task a (the smaller) is scaled by 2 up to 0.2, so
  // d = 2·(0.1,0) + 1·(0,0.2) = (0.2, 0.2).
  FixedGradients g({{2, 0}, {0, 1}});
  const StepOutput first = stepWith(*db, {2, 0.5}, g);
  REQUIRE(first.kind == StepOutput::Kind::kSharedGradient);
  auto d = directionOf(first);
  REQUIRE(d[0] == Approx(0.2));
  REQUIRE(d[1] == Approx(0.2));
  // Heads get ∇ log L_i = ∇L_i / L_i.
  const auto w = weightsOf(first);
  REQUIRE(w[0] == Approx(0.5));
  REQUIRE(w[1] == Approx(2.0));
  // Diagnostics: norms, then scales.
  REQUIRE(first.diagnostics[0] == Approx(0.1));
  REQUIRE(first.diagnostics[1] == Approx(0.2));
  REQUIRE(first.diagnostics[2] == Approx(2.0));
  REQUIRE(first.diagnostics[3] == Approx(1.0));

  // Step 2: g = ((4,0), (0,1)), L = (4, 1): log-loss gradients (1,0), (0,1);
  // ĝ_a = 0.9·(0.1,0) + 0.1·(1,0) = (0.19, 0), ĝ_b = 0.9·(0,0.2) + 0.1·(0,1) = (0, 0.28).
  // Now task b is the larger: d = (0.28/0.19)·(0.19,0) + (0,0.28) = (0.28, 0.28).
  g.set({{4, 0}, {0, 1}});
  const StepOutput second = stepWith(*db, {4, 1}, g, 1);
  d = directionOf(second);
  REQUIRE(d[0] == Approx(0.28));
  REQUIRE(d[1] == Approx(0.28));
  REQUIRE(second.diagnostics[2] == Approx(0.28 / 0.19));
  const StrategyState state = db->state();
  const torch::Tensor expected =
      torch::tensor({0.19, 0.0, 0.0, 0.28}, torch::kFloat64).view({2, 2});
  REQUIRE(torch::allclose(state.at("ema"), expected, 1e-7, 1e-12));
  REQUIRE(state.at("steps").item<int64_t>() == 2);
}

TEST_CASE("db_mtl: every EMA gradient is scaled to the largest norm", "[strategy][db_mtl]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  auto db = attached("{name: db_mtl, beta: 0}", tasks);
  // β = 0: ĝ_i = g_i / L_i = (3,4)/1, (0,0.5)/1, (1,0)/0.25 with norms 5, 0.5, 4;
  // d = (3,4) + 10·(0,0.5) + (5/4)·(4,0) = (8, 9).
  FixedGradients g({{3, 4}, {0, 0.5}, {1, 0}});
  const StepOutput out = stepWith(*db, {1, 1, 0.25}, g);
  const auto d = directionOf(out);
  REQUIRE(d[0] == Approx(8.0));
  REQUIRE(d[1] == Approx(9.0));
  for (std::size_t i = 0; i < 3; ++i) {
    // scale_i · ‖ĝ_i‖ = max_j ‖ĝ_j‖ = 5
    REQUIRE(out.diagnostics[3 + i] * out.diagnostics[i] == Approx(5.0));
  }
  REQUIRE(out.diagnostics[4] == Approx(10.0));  // the smallest gradient gets the largest factor
}

TEST_CASE("db_mtl: the loss scale does not matter, the gradient scale does not either",
          "[strategy][db_mtl]") {
  // Multiplying a task's loss (and so its gradient) by c leaves g_i/L_i unchanged.
  const auto tasks = makeTasks({"a", "b"});
  auto one = attached("{name: db_mtl}", tasks);
  auto other = attached("{name: db_mtl}", tasks);
  FixedGradients g({{1, 2}, {-1, 0.5}});
  FixedGradients scaledTask({{100, 200}, {-1, 0.5}});
  const auto d = directionOf(stepWith(*one, {0.5, 2}, g));
  const auto e = directionOf(stepWith(*other, {50, 2}, scaledTask));
  REQUIRE(e[0] == Approx(d[0]));
  REQUIRE(e[1] == Approx(d[1]));
}

TEST_CASE("db_mtl: beta_sigma decays β as β/t^σ", "[strategy][db_mtl]") {
  const auto tasks = makeTasks({"a", "b"});
  auto db = attached("{name: db_mtl, beta_sigma: 1}", tasks);
  FixedGradients g({{1, 0}, {0, 1}});
  // t = 1: β_1 = 0.9, ĝ = 0.1·(1,0), 0.1·(0,1).
  stepWith(*db, {1, 1}, g);
  // t = 2: β_2 = 0.45, ĝ_a = 0.45·(0.1,0) + 0.55·(2,0) = (1.145, 0) with L_a = 0.5;
  // ĝ_b = 0.45·(0,0.1) + 0.55·(0,1) = (0, 0.595).
  const StepOutput out = stepWith(*db, {0.5, 1}, g, 1);
  REQUIRE(out.diagnostics[0] == Approx(1.145));
  REQUIRE(out.diagnostics[1] == Approx(0.595));
  const auto d = directionOf(out);
  REQUIRE(d[0] == Approx(1.145));
  REQUIRE(d[1] == Approx(1.145));
}

TEST_CASE("db_mtl: state save and restore", "[strategy][db_mtl][state]") {
  const auto tasks = makeTasks({"a", "b"});
  auto db = attached("{name: db_mtl, beta_sigma: 0.5}", tasks);
  auto fresh = attached("{name: db_mtl, beta_sigma: 0.5}", tasks);
  // Before any step the EMA is empty (T × 0) and restores to "no EMA".
  REQUIRE(db->state().at("ema").sizes() == torch::IntArrayRef{2, 0});
  fresh->loadState(db->state());

  FixedGradients g({{1, 2, 3}, {-1, 0.5, 0}});
  stepWith(*db, {1.5, 0.7}, g);
  g.set({{0.5, -2, 1}, {2, 1, 1}});
  stepWith(*db, {1.2, 0.9}, g, 1);

  auto restored = attached("{name: db_mtl, beta_sigma: 0.5}", tasks);
  restored->loadState(db->state());
  g.set({{1, 1, -1}, {0, 3, 1}});
  const StepOutput a = stepWith(*db, {1.0, 0.8}, g, 2);
  const StepOutput b = stepWith(*restored, {1.0, 0.8}, g, 2);
  REQUIRE(torch::allclose(a.direction, b.direction, 1e-12, 1e-15));
  REQUIRE(a.diagnostics == b.diagnostics);
  // A fresh strategy would differ (its EMA starts at 0 and t at 1).
  const StepOutput c = stepWith(*fresh, {1.0, 0.8}, g);
  REQUIRE_FALSE(torch::allclose(a.direction, c.direction));

  SECTION("a checkpoint for another parameter count is rejected at the next step") {
    auto other = attached("{name: db_mtl}", tasks);
    other->loadState(db->state());
    FixedGradients wrong({{1, 2}, {3, 4}});
    REQUIRE_THROWS_WITH(stepWith(*other, {1, 1}, wrong),
                        Catch::Contains("have 2 entries per task but the EMA"));
  }
  SECTION("a checkpoint for other tasks is rejected") {
    auto three = attached("{name: db_mtl}", makeTasks({"a", "b", "c"}));
    REQUIRE_THROWS_WITH(three->loadState(db->state()),
                        Catch::Contains("'ema' has 2 rows, expected 3"));
  }
}

TEST_CASE("db_mtl: losses and options", "[strategy][db_mtl]") {
  const auto tasks = makeTasks({"a", "b"});
  auto db = attached("{name: db_mtl}", tasks);
  FixedGradients g({{1, 0}, {0, 1}});
  REQUIRE_THROWS_WITH(stepWith(*db, {1, -1}, g), Catch::Contains("task 'b' has loss -1"));
  // A zero loss is allowed (log(0 + ε)).
  const auto d = directionOf(stepWith(*db, {1, 0}, g));
  for (double x : d) REQUIRE(std::isfinite(x));

  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: db_mtl, beta: 1}"), tasks),
                      Catch::Contains("strategy.beta: must be < 1, got 1"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: db_mtl, beta: -0.5}"), tasks),
                      Catch::Contains("strategy.beta: -0.5 is out of range"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: db_mtl, beta_sigma: -1}"), tasks),
                      Catch::Contains("strategy.beta_sigma: -1 is out of range"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: db_mtl, gradients: representation}"), tasks),
                      Catch::Contains("unknown key 'gradients'"));
  const auto names = makeStrategy(yamlNode("{name: db_mtl}"), tasks)->diagnosticNames();
  REQUIRE(names == std::vector<std::string>{"norm_a", "norm_b", "scale_a", "scale_b"});
}
