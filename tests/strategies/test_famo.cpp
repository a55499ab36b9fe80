#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>

#include "strategies/famo.h"
#include "strategies/registry.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;

namespace {

Famo makeFamo(const std::vector<TaskSpec>& tasks,
              FamoLossAfter lossAfter = FamoLossAfter::kSecondPass) {
  FamoOptions options;
  options.lossAfter = lossAfter;
  Famo famo(options, tasks);
  famo.attach(makeContext(tasks));
  return famo;
}

}  // namespace

TEST_CASE("famo: the objective and its convex-combination weights", "[strategy][famo]") {
  const auto tasks = makeTasks({"a", "b"});
  Famo famo = makeFamo(tasks);
  FixedGradients none;
  const std::vector<torch::Tensor> losses = makeLosses({1.0, 4.0});
  const StepOutput out = famo.step(StepInput{losses, none, 0, 0});
  // z = (1/2, 1/2); c = 1 / (0.5/1 + 0.5/4) = 1.6; L = 1.6 (0.5 log 1 + 0.5 log 4) = 0.8 log 4.
  REQUIRE(out.objective.item<double>() == Approx(0.8 * std::log(4.0)));
  // Weights c z_i / L_i = (0.8, 0.2), summing to 1.
  const std::vector<double> w = weightsOf(out);
  REQUIRE(w[0] == Approx(0.8));
  REQUIRE(w[1] == Approx(0.2));
  REQUIRE(out.diagnostics == std::vector<double>{0.5, 0.5});
  out.objective.backward();
  REQUIRE(losses[0].grad().item<double>() == Approx(0.8));
  REQUIRE(losses[1].grad().item<double>() == Approx(0.2));
}

TEST_CASE("famo: two logit updates by hand (Adam with weight decay)", "[strategy][famo]") {
  const auto tasks = makeTasks({"a", "b"});
  Famo famo = makeFamo(tasks);
  REQUIRE(famo.wantsLossesAfterStep());
  FixedGradients none;
  stepWith(famo, {2.0, 2.0}, none);
  famo.afterStep({1.0, 1.6});
  // delta = (log 2, log 1.25) = (0.693147, 0.223144); z·delta = 0.458145;
  // g = z (delta − z·delta) = (0.117501, −0.117501) (γ ξ = 0 at ξ = 0).
  // Adam step 1: m̂ = g, v̂ = g², ξ = −0.025 g/|g| = (−0.025, 0.025);
  // z = softmax = (1/(1+e^0.05), e^0.05/(1+e^0.05)) = (0.4875026, 0.5124974):
  // task b, whose loss fell less, gains weight.
  std::vector<double> z = famo.taskWeights();
  REQUIRE(z[0] == Approx(0.4875026));
  REQUIRE(z[1] == Approx(0.5124974));
  stepWith(famo, {1.0, 1.0}, none, 1);
  famo.afterStep({0.9, 0.9});
  // Equal decreases: z (delta − z·delta) = 0, g = γ ξ = (−2.5e-5, 2.5e-5).
  // m = 0.9·0.1·0.117501 + 0.1·(−2.5e-5) = 0.0105726; v = 0.999·0.001·0.117501² + 0.001·(2.5e-5)²
  // = 1.379266e-5; m̂ = m/0.19 = 0.0556452, √v̂ = √(v/0.001999) = 0.0830650;
  // ξ_a = −0.025 − 0.025·0.0556452/0.0830650 = −0.0417475 (Adam's momentum keeps moving ξ).
  // z_a = 1/(1+e^{0.083495}) = 0.4791384.
  z = famo.taskWeights();
  REQUIRE(z[0] == Approx(0.4791384));
  REQUIRE(z[0] + z[1] == Approx(1.0));
}

TEST_CASE("famo: the task whose loss decreases less gets more weight", "[strategy][famo]") {
  const auto tasks = makeTasks({"fast", "slow", "mid"});
  Famo famo = makeFamo(tasks);
  FixedGradients none;
  std::vector<double> loss{1.0, 1.0, 1.0};
  double previousSlow = 1.0 / 3.0;
  for (int step = 0; step < 20; ++step) {
    const StepOutput out = stepWith(famo, loss, none, step);
    const std::vector<double> w = weightsOf(out);
    REQUIRE(std::accumulate(w.begin(), w.end(), 0.0) == Approx(1.0));
    // Per step: fast −10 %, slow −1 %, mid −5 %.
    const std::vector<double> after{loss[0] * 0.9, loss[1] * 0.99, loss[2] * 0.95};
    famo.afterStep(after);
    const std::vector<double> z = famo.taskWeights();
    REQUIRE(std::accumulate(z.begin(), z.end(), 0.0) == Approx(1.0));
    // Adam's first step is sign-like (every coordinate moves by lr), so slow and
    // mid tie after it; from then on slow leads.
    if (step > 0) REQUIRE(z[1] > z[2]);
    REQUIRE(z[2] > z[0]);
    REQUIRE(z[1] > previousSlow);
    previousSlow = z[1];
    loss = after;
  }
  // After 20 steps (simulated): z ≈ (0.190, 0.511, 0.299).
  const std::vector<double> z = famo.taskWeights();
  REQUIRE(z[1] > 0.5);
  REQUIRE(z[0] < 0.2);
}

TEST_CASE("famo: loss_after next_step updates from the next step's losses", "[strategy][famo]") {
  const auto tasks = makeTasks({"a", "b"});
  auto strategy = makeStrategy(yamlNode("{name: famo, loss_after: next_step}"), tasks);
  strategy->attach(makeContext(tasks));
  REQUIRE_FALSE(strategy->wantsLossesAfterStep());
  FixedGradients none;
  stepWith(*strategy, {2.0, 2.0}, none, 0);
  // The same before/after pair as the second-pass update above: z = (0.4875026, 0.5124974),
  // applied already in this step (reported as diagnostics).
  const StepOutput out = stepWith(*strategy, {1.0, 1.6}, none, 1);
  REQUIRE(out.diagnostics[0] == Approx(0.4875026));
  REQUIRE(out.diagnostics[1] == Approx(0.5124974));
  REQUIRE_THROWS_WITH(strategy->afterStep({1.0, 1.0}), Catch::Contains("loss_after: next_step"));
}

TEST_CASE("famo: second_pass refuses a step without the losses after the previous one",
          "[strategy][famo]") {
  const auto tasks = makeTasks({"a", "b"});
  Famo famo = makeFamo(tasks);
  FixedGradients none;
  REQUIRE_THROWS_WITH(famo.afterStep({1.0, 1.0}), Catch::Contains("without a preceding step()"));
  stepWith(famo, {1.0, 1.0}, none);
  REQUIRE_THROWS_WITH(stepWith(famo, {1.0, 1.0}, none, 1),
                      Catch::Contains("step() called again before afterStep()"));
  REQUIRE_THROWS_WITH(famo.afterStep({1.0}), Catch::Contains("got 1 losses for 2 tasks"));
}

TEST_CASE("famo: a restored strategy continues exactly", "[strategy][famo]") {
  const auto tasks = makeTasks({"a", "b"});
  for (FamoLossAfter mode : {FamoLossAfter::kSecondPass, FamoLossAfter::kNextStep}) {
    Famo first = makeFamo(tasks, mode);
    FixedGradients none;
    auto advance = [&](Famo& famo, int step) {
      const std::vector<double> loss{1.0 / (1.0 + step), 2.0 / (1.0 + 0.1 * step)};
      const StepOutput out = stepWith(famo, loss, none, step);
      if (mode == FamoLossAfter::kSecondPass) famo.afterStep({loss[0] * 0.8, loss[1] * 0.97});
      return weightsOf(out);
    };
    for (int step = 0; step < 3; ++step) advance(first, step);
    Famo second = makeFamo(tasks, mode);
    second.loadState(first.state());
    REQUIRE(second.taskWeights() == first.taskWeights());
    for (int step = 3; step < 6; ++step) REQUIRE(advance(second, step) == advance(first, step));
    REQUIRE(second.taskWeights() == first.taskWeights());
    REQUIRE(first.taskWeights()[0] != Approx(0.5));  // the logits did move
  }
}

TEST_CASE("famo: options are validated", "[strategy][famo]") {
  const auto tasks = makeTasks({"a", "b"});
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: famo, lr: 0}"), tasks),
                      Catch::Contains("strategy.lr: must be > 0, got 0"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: famo, weight_decay: -1}"), tasks),
                      Catch::Contains("strategy.weight_decay"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: famo, loss_after: later}"), tasks),
                      Catch::Contains("strategy.loss_after"));
}
