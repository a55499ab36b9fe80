#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>

#include "strategies/gradnorm.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;
using Catch::Matchers::Contains;

namespace {

std::unique_ptr<GradNorm> buildGradNorm(const std::string& yaml,
                                        const std::vector<TaskSpec>& tasks) {
  auto strategy = std::make_unique<GradNorm>(readGradNormOptions(yamlNode(yaml), tasks), tasks);
  strategy->attach(makeContext(tasks));
  return strategy;
}

double sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

}  // namespace

TEST_CASE("gradnorm: the task with the larger gradient norm loses weight", "[strategy][gradnorm]") {
  const auto tasks = makeTasks({"a", "b"});
  auto gradnorm = buildGradNorm("{}", tasks);  // α = 1.5, Adam, lr 0.025
  CHECK(gradnorm->needs() == GradientNeed::kLastSharedLayer);
  CHECK(gradnorm->diagnosticNames() == std::vector<std::string>{"gradnorm_loss"});

  // Rows (3, 4) and (0, 1): n = (5, 1). Equal losses, so L̃ = r = (1, 1).
  FixedGradients gradients({{3.0, 4.0}, {0.0, 1.0}});
  const StepOutput first = stepWith(*gradnorm, {1.0, 1.0}, gradients);
  CHECK(gradients.lastLayerCalls == 1);
  CHECK(gradients.sharedCalls == 0);
  // Weights before the update: (1, 1); objective 1 + 1 = 2.
  CHECK(weightsOf(first) == std::vector<double>{1.0, 1.0});
  CHECK(first.objective.item<double>() == Approx(2.0));
  // G = (5, 1), Ḡ = 3, target = (3, 3): L_grad = |5 − 3| + |1 − 3| = 4.
  REQUIRE(first.diagnostics.size() == 1);
  CHECK(first.diagnostics[0] == Approx(4.0).epsilon(1e-12));
  // ∂L_grad/∂w = (sign(2)·5, sign(−2)·1) = (5, −1). Adam's first step moves each
  // weight by lr·g/|g| = ∓0.025: w = (0.975, 1.025), already summing to 2.
  const std::vector<double> w = gradnorm->weights();
  CHECK(w[0] == Approx(0.975).epsilon(1e-8));
  CHECK(w[1] == Approx(1.025).epsilon(1e-8));
  CHECK(sum(w) == Approx(2.0).epsilon(1e-12));

  // The next objective uses the updated weights: 0.975·2 + 1.025·3 = 5.025.
  const StepOutput second = stepWith(*gradnorm, {2.0, 3.0}, gradients, 1);
  CHECK(second.objective.item<double>() == Approx(5.025).epsilon(1e-8));
  CHECK(weightsOf(second)[0] == Approx(0.975).epsilon(1e-6));
}

TEST_CASE("gradnorm: plain gradient descent and renormalisation", "[strategy][gradnorm]") {
  const auto tasks = makeTasks({"a", "b"});
  auto gradnorm = buildGradNorm("{optimizer: sgd, lr: 0.01}", tasks);
  FixedGradients gradients({{3.0, 4.0}, {0.0, 1.0}});
  stepWith(*gradnorm, {1.0, 1.0}, gradients);
  // w = (1 − 0.01·5, 1 + 0.01·1) = (0.95, 1.01), Σ = 1.96, ×2/1.96:
  // (0.969387755, 1.030612245).
  CHECK(gradnorm->weights()[0] == Approx(0.95 * 2.0 / 1.96).epsilon(1e-12));
  CHECK(gradnorm->weights()[1] == Approx(1.01 * 2.0 / 1.96).epsilon(1e-12));
}

TEST_CASE("gradnorm: the loss ratio moves weight to the slower task", "[strategy][gradnorm]") {
  const auto tasks = makeTasks({"a", "b"});
  auto gradnorm = buildGradNorm("{alpha: 1, optimizer: sgd, lr: 0.1}", tasks);
  FixedGradients gradients({{1.0, 0.0}, {0.0, 1.0}});  // n = (1, 1)
  // Step 0 records L(0) = (1, 1); G = target = (1, 1), so L_grad = 0 and w stays (1, 1).
  const StepOutput first = stepWith(*gradnorm, {1.0, 1.0}, gradients);
  CHECK(first.diagnostics[0] == 0.0);
  CHECK(gradnorm->weights() == std::vector<double>{1.0, 1.0});
  CHECK(gradnorm->initialLosses() == std::vector<double>{1.0, 1.0});
  // Step 1: task a halved its loss. L̃ = (0.5, 1), r = (2/3, 4/3), Ḡ = 1,
  // target = (2/3, 4/3); L_grad = 1/3 + 1/3; ∂/∂w = (+1, −1); w = (0.9, 1.1).
  const StepOutput second = stepWith(*gradnorm, {0.5, 1.0}, gradients, 1);
  CHECK(second.diagnostics[0] == Approx(2.0 / 3.0).epsilon(1e-12));
  CHECK(gradnorm->weights()[0] == Approx(0.9).epsilon(1e-12));
  CHECK(gradnorm->weights()[1] == Approx(1.1).epsilon(1e-12));
  // L(0) stays the first step's losses.
  CHECK(gradnorm->initialLosses() == std::vector<double>{1.0, 1.0});
}

TEST_CASE("gradnorm: with alpha 0 the target is the mean weighted norm", "[strategy][gradnorm]") {
  const auto tasks = makeTasks({"a", "b"});
  // Step 0 with equal norms leaves w = (1, 1) (zero gradient); step 1 has
  // L̃ = (0.5, 1), r = (2/3, 4/3) and n = (5, 1), so G = (5, 1), Ḡ = 3.
  auto run = [&](const std::string& yaml) {
    auto gradnorm = buildGradNorm(yaml, tasks);
    FixedGradients gradients({{1.0, 0.0}, {0.0, 1.0}});
    stepWith(*gradnorm, {1.0, 1.0}, gradients);
    REQUIRE(gradnorm->weights() == std::vector<double>{1.0, 1.0});
    gradients.set({{3.0, 4.0}, {0.0, 1.0}});
    return stepWith(*gradnorm, {0.5, 1.0}, gradients, 1).diagnostics.at(0);
  };
  // α = 0: target = (3, 3); L_grad = 2 + 2 = 4, whatever the ratios.
  CHECK(run("{alpha: 0}") == Approx(4.0).epsilon(1e-12));
  // α = 1: target = 3·(2/3, 4/3) = (2, 4); L_grad = 3 + 3 = 6.
  CHECK(run("{alpha: 1}") == Approx(6.0).epsilon(1e-12));
}

TEST_CASE("gradnorm: L_grad with the default alpha 1.5", "[strategy][gradnorm]") {
  const auto tasks = makeTasks({"a", "b"});
  auto gradnorm = buildGradNorm("{}", tasks);
  FixedGradients gradients({{1.0, 0.0}, {0.0, 1.0}});
  stepWith(*gradnorm, {1.0, 1.0}, gradients);  // zero gradient: Adam leaves w = (1, 1)
  REQUIRE(gradnorm->weights() == std::vector<double>{1.0, 1.0});
  gradients.set({{2.0, 0.0}, {0.0, 1.0}});
  // L̃ = (0.25, 1), mean 0.625, r = (0.4, 1.6); r^1.5 = (0.252982, 2.023858);
  // G = (2, 1), Ḡ = 1.5, target = (0.379473, 3.035787);
  // L_grad = 1.620527 + 2.035787 = 3.656313.
  const StepOutput out = stepWith(*gradnorm, {0.25, 1.0}, gradients, 1);
  CHECK(out.diagnostics[0] == Approx(3.6563132345414386).epsilon(1e-9));
  // Both gaps push w_a down and w_b up.
  CHECK(gradnorm->weights()[0] < 1.0);
  CHECK(gradnorm->weights()[1] > 1.0);
}

TEST_CASE("gradnorm: layer all asks for the shared-parameter gradients", "[strategy][gradnorm]") {
  const auto tasks = makeTasks({"a", "b"});
  auto gradnorm = buildGradNorm("{layer: all}", tasks);
  CHECK(gradnorm->needs() == GradientNeed::kSharedParameters);
  FixedGradients gradients({{3.0, 4.0}, {0.0, 1.0}});
  stepWith(*gradnorm, {1.0, 1.0}, gradients);
  CHECK(gradients.sharedCalls == 1);
  CHECK(gradients.lastLayerCalls == 0);
}

TEST_CASE("gradnorm: weights stay positive and sum to T", "[strategy][gradnorm]") {
  SECTION("over many Adam steps with changing inputs") {
    const auto tasks = makeTasks({"a", "b", "c"});
    auto gradnorm = buildGradNorm("{lr: 0.5}", tasks);
    FixedGradients gradients({{1.0}, {1.0}, {1.0}});
    for (int t = 0; t < 50; ++t) {
      const double x = static_cast<double>(t);
      gradients.set({{1.0 + std::sin(x), 0.5}, {2.0, std::cos(x)}, {0.1, 0.2 * x}});
      stepWith(*gradnorm, {1.0 + 0.1 * std::sin(x), 2.0 / (1.0 + x), 1.0}, gradients, t);
      const auto& w = gradnorm->weights();
      CHECK(sum(w) == Approx(3.0).epsilon(1e-12));
      CHECK(*std::min_element(w.begin(), w.end()) > 0.0);
    }
  }
  SECTION("a step that would make a weight negative is clamped") {
    const auto tasks = makeTasks({"a", "b"});
    auto gradnorm = buildGradNorm("{optimizer: sgd, lr: 1}", tasks);
    FixedGradients gradients({{3.0, 4.0}, {0.0, 1.0}});
    stepWith(*gradnorm, {1.0, 1.0}, gradients);
    // w = (1 − 5, 1 + 1) = (−4, 2) → clamp to (0.001, 2) → ×2/2.001.
    CHECK(gradnorm->weights()[0] == Approx(0.001 * 2.0 / 2.001).epsilon(1e-12));
    CHECK(gradnorm->weights()[1] == Approx(2.0 * 2.0 / 2.001).epsilon(1e-12));
  }
}

TEST_CASE("gradnorm: invalid losses and options", "[strategy][gradnorm]") {
  const auto tasks = makeTasks({"a", "b"});
  FixedGradients gradients({{1.0}, {1.0}});
  SECTION("a zero initial loss") {
    auto gradnorm = buildGradNorm("{}", tasks);
    REQUIRE_THROWS_WITH(stepWith(*gradnorm, {1.0, 0.0}, gradients, 7),
                        Contains("initial loss of task b is 0 at step 7"));
  }
  SECTION("a negative loss") {
    auto gradnorm = buildGradNorm("{}", tasks);
    REQUIRE_THROWS_WITH(stepWith(*gradnorm, {-1.0, 1.0}, gradients, 3),
                        Contains("loss of task a is -1 at step 3"));
  }
  SECTION("a gradient matrix with the wrong number of rows") {
    auto gradnorm = buildGradNorm("{}", tasks);
    FixedGradients oneRow(std::vector<std::vector<double>>{{1.0, 2.0}});
    REQUIRE_THROWS_WITH(stepWith(*gradnorm, {1.0, 1.0}, oneRow),
                        Contains("expected a 2 x P gradient matrix, got [1, 2]"));
  }
  SECTION("options") {
    REQUIRE_THROWS_WITH(readGradNormOptions(yamlNode("{alpha: -1}"), tasks),
                        Contains("strategy.alpha: -1 is out of range: must be >= 0"));
    REQUIRE_THROWS_WITH(readGradNormOptions(yamlNode("{lr: 0}"), tasks),
                        Contains("strategy.lr: must be > 0, got 0"));
    REQUIRE_THROWS_WITH(readGradNormOptions(yamlNode("{optimizer: adamw}"), tasks),
                        Contains("'adamw' is not one of: adam, sgd"));
    REQUIRE_THROWS_WITH(readGradNormOptions(yamlNode("{layer: first}"), tasks),
                        Contains("'first' is not one of: last, all"));
    REQUIRE_THROWS_WITH(readGradNormOptions(yamlNode("{min_weight: 1}"), tasks),
                        Contains("strategy.min_weight: must be in (0, 1), got 1"));
  }
}

TEST_CASE("gradnorm: state round trip reproduces the next step", "[strategy][gradnorm]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  FixedGradients gradients({{1.0}, {1.0}, {1.0}});
  auto inputsAt = [&](int t) {
    const double x = static_cast<double>(t);
    gradients.set({{1.0 + x, 0.5}, {2.0, 0.3 * x}, {0.1, 1.0}});
    return std::vector<double>{1.0 / (1.0 + x), 2.0 - 0.1 * x, 1.5};
  };

  auto trained = buildGradNorm("{alpha: 0.5}", tasks);
  for (int t = 0; t < 3; ++t) stepWith(*trained, inputsAt(t), gradients, t);

  auto restored = buildGradNorm("{alpha: 0.5}", tasks);
  restored->loadState(trained->state());
  auto fresh = buildGradNorm("{alpha: 0.5}", tasks);

  for (int t = 3; t < 5; ++t) {
    const std::vector<double> losses = inputsAt(t);
    const StepOutput a = stepWith(*trained, losses, gradients, t);
    const StepOutput b = stepWith(*restored, losses, gradients, t);
    CHECK(a.objective.item<double>() == b.objective.item<double>());
    CHECK(weightsOf(a) == weightsOf(b));
    CHECK(a.diagnostics == b.diagnostics);
    // The Adam moments came along too: the updated weights agree exactly.
    CHECK(trained->weights() == restored->weights());
    if (t == 3) {
      // Without the state, L(0) and w differ, and so does the step.
      const StepOutput c = stepWith(*fresh, losses, gradients, t);
      CHECK(c.objective.item<double>() != Approx(a.objective.item<double>()));
      CHECK(c.diagnostics[0] != Approx(a.diagnostics[0]));
    }
  }
  CHECK(restored->initialLosses() == trained->initialLosses());

  SECTION("a state saved before the first step has no L(0)") {
    auto unstarted = buildGradNorm("{}", tasks);
    CHECK(unstarted->state().count("initial_losses") == 0);
    restored->loadState(unstarted->state());
    CHECK(restored->initialLosses().empty());
    CHECK(restored->weights() == std::vector<double>{1.0, 1.0, 1.0});
  }
  SECTION("a malformed state is rejected and changes nothing") {
    StrategyState bad = trained->state();
    bad["adam_v"] = torch::zeros({2}, torch::kFloat64);
    const std::vector<double> before = restored->weights();
    REQUIRE_THROWS_WITH(restored->loadState(bad),
                        Contains("checkpoint 'adam_v' has 2 entries, expected 3"));
    CHECK(restored->weights() == before);
  }
}
