#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>

#include "strategies/dwa.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;
using Catch::Matchers::Contains;

namespace {

std::unique_ptr<DynamicWeightAverage> buildDwa(const std::string& yaml,
                                               const std::vector<TaskSpec>& tasks) {
  auto strategy =
      std::make_unique<DynamicWeightAverage>(readDwaOptions(yamlNode(yaml), tasks), tasks);
  strategy->attach(makeContext(tasks));
  return strategy;
}

double sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

}  // namespace

TEST_CASE("dwa: weights are 1 in epochs 0 and 1, then follow eq. 7", "[strategy][dwa]") {
  const auto tasks = makeTasks({"a", "b"});
  auto dwa = buildDwa("{}", tasks);  // τ = 2, mode epoch
  CHECK(dwa->needs() == GradientNeed::kLosses);
  FixedGradients unused;

  const StepOutput epoch0 = stepWith(*dwa, {2.0, 3.0}, unused, 0, 0);
  CHECK(weightsOf(epoch0) == std::vector<double>{1.0, 1.0});
  CHECK(epoch0.objective.item<double>() == Approx(5.0));  // 2 + 3
  dwa->onEpochEnd(EpochStats{0, {1.0, 2.0}});

  const StepOutput epoch1 = stepWith(*dwa, {2.0, 3.0}, unused, 10, 1);
  CHECK(weightsOf(epoch1) == std::vector<double>{1.0, 1.0});
  dwa->onEpochEnd(EpochStats{1, {0.5, 1.8}});

  // w = (0.5/1, 1.8/2) = (0.5, 0.9); exp(w/2) = (1.284025, 1.568312), Σ = 2.852337;
  // λ = 2·(0.450166, 0.549834) = (0.900332, 1.099668).
  const StepOutput epoch2 = stepWith(*dwa, {2.0, 3.0}, unused, 20, 2);
  const std::vector<double> lambda = weightsOf(epoch2);
  CHECK(lambda[0] == Approx(0.900332005375044).epsilon(1e-6));
  CHECK(lambda[1] == Approx(1.099667994624956).epsilon(1e-6));
  CHECK(sum(lambda) == Approx(2.0).epsilon(1e-6));
  // Objective 0.900332·2 + 1.099668·3 = 5.099668.
  CHECK(epoch2.objective.item<double>() == Approx(5.099667994624956).epsilon(1e-12));
  // The task whose loss fell faster (a) gets the smaller weight.
  CHECK(lambda[0] < lambda[1]);

  // Epoch 3 uses epochs 1 and 2 only: w = (0.5/0.5, 0.9/1.8) = (1, 0.5);
  // λ = 2·(e^0.5, e^0.25)/(e^0.5 + e^0.25) = (1.124353, 0.875647).
  dwa->onEpochEnd(EpochStats{2, {0.5, 0.9}});
  const std::vector<double> next = dwa->currentWeights();
  CHECK(next[0] == Approx(1.1243530017715964).epsilon(1e-12));
  CHECK(next[1] == Approx(0.8756469982284038).epsilon(1e-12));
}

TEST_CASE("dwa: temperature sharpens or flattens the weights", "[strategy][dwa]") {
  const auto tasks = makeTasks({"a", "b"});
  auto lambdaAt = [&](const std::string& yaml) {
    auto dwa = buildDwa(yaml, tasks);
    dwa->onEpochEnd(EpochStats{0, {1.0, 2.0}});
    dwa->onEpochEnd(EpochStats{1, {0.5, 1.8}});  // w = (0.5, 0.9)
    return dwa->currentWeights();
  };
  // τ = 0.1: λ_a = 2/(1 + e^4) = 0.035972, λ_b = 1.964028.
  const std::vector<double> sharp = lambdaAt("{temperature: 0.1}");
  CHECK(sharp[0] == Approx(2.0 / (1.0 + std::exp(4.0))).epsilon(1e-12));
  CHECK(sharp[1] == Approx(1.964027580075817).epsilon(1e-12));
  // τ = 100: λ = (0.998000, 1.002000), close to 1.
  const std::vector<double> flat = lambdaAt("{temperature: 100}");
  CHECK(flat[0] == Approx(0.9980000026666623).epsilon(1e-12));
  CHECK(flat[1] == Approx(1.0019999973333378).epsilon(1e-12));
  CHECK(sum(sharp) == Approx(2.0).epsilon(1e-12));
  CHECK(sum(flat) == Approx(2.0).epsilon(1e-12));
}

TEST_CASE("dwa: three tasks sum to T", "[strategy][dwa]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  auto dwa = buildDwa("{temperature: 2}", tasks);
  dwa->onEpochEnd(EpochStats{0, {2.0, 1.0, 1.0}});
  dwa->onEpochEnd(EpochStats{1, {1.0, 0.9, 1.2}});  // w = (0.5, 0.9, 1.2)
  const std::vector<double> lambda = dwa->currentWeights();
  // 3·exp(w/2)/Σexp(w/2) = (0.824069, 1.006521, 1.169410).
  CHECK(lambda[0] == Approx(0.8240693501701435).epsilon(1e-12));
  CHECK(lambda[1] == Approx(1.0065205772130723).epsilon(1e-12));
  CHECK(lambda[2] == Approx(1.169410072616784).epsilon(1e-12));
  CHECK(sum(lambda) == Approx(3.0).epsilon(1e-12));
}

TEST_CASE("dwa: window mode compares the last two windows of steps", "[strategy][dwa]") {
  const auto tasks = makeTasks({"a", "b"});
  auto dwa = buildDwa("{mode: window, window: 2}", tasks);
  FixedGradients unused;
  // Steps 0-3 (fewer than 2W = 4 earlier steps): λ = 1.
  const std::vector<std::vector<double>> losses = {{4, 1}, {4, 1}, {2, 1}, {2, 1}};
  for (int t = 0; t < 4; ++t) {
    const StepOutput out = stepWith(*dwa, losses[static_cast<std::size_t>(t)], unused, t);
    CHECK(weightsOf(out) == std::vector<double>{1.0, 1.0});
  }
  // onEpochEnd does not matter in window mode.
  dwa->onEpochEnd(EpochStats{0, {100.0, 1.0}});
  // Step 4: w = (mean(2, 2)/mean(4, 4), 1) = (0.5, 1);
  // λ = 2·(e^0.25, e^0.5)/(e^0.25 + e^0.5) = (0.875647, 1.124353).
  const StepOutput step4 = stepWith(*dwa, {1.0, 1.0}, unused, 4);
  CHECK(weightsOf(step4)[0] == Approx(0.8756469982284038).epsilon(1e-6));
  CHECK(weightsOf(step4)[1] == Approx(1.1243530017715964).epsilon(1e-6));
  // Step 5: windows slide by one: steps 1-2 (4, 2) vs 3-4 (2, 1): w_a = 1.5/3 = 0.5
  // again; task b constant: the same λ.
  const StepOutput step5 = stepWith(*dwa, {1.0, 1.0}, unused, 5);
  CHECK(weightsOf(step5)[0] == Approx(0.8756469982284038).epsilon(1e-6));
  // Step 6: steps 2-3 (2, 2) vs 4-5 (1, 1): w_a = 0.5; step 7: steps 3-4 (2, 1) vs
  // 5-6 (1, 1): w_a = 1/1.5 = 2/3, λ_a = 2/(1 + e^{(1 − 2/3)/2}) = 0.916870.
  stepWith(*dwa, {1.0, 1.0}, unused, 6);
  const StepOutput step7 = stepWith(*dwa, {1.0, 1.0}, unused, 7);
  CHECK(weightsOf(step7)[0] == Approx(2.0 / (1.0 + std::exp(1.0 / 6.0))).epsilon(1e-6));
}

TEST_CASE("dwa: option and input errors", "[strategy][dwa]") {
  const auto tasks = makeTasks({"a", "b"});
  REQUIRE_THROWS_WITH(readDwaOptions(yamlNode("{temperature: 0}"), tasks),
                      Contains("strategy.temperature: must be > 0, got 0"));
  REQUIRE_THROWS_WITH(readDwaOptions(yamlNode("{window: 10}"), tasks),
                      Contains("strategy.window: is used only with 'mode: window'"));
  REQUIRE_THROWS_WITH(readDwaOptions(yamlNode("{mode: window, window: 0}"), tasks),
                      Contains("strategy.window: 0 is out of range: must be >= 1"));
  REQUIRE_THROWS_WITH(readDwaOptions(yamlNode("{mode: steps}"), tasks),
                      Contains("'steps' is not one of: epoch, window"));

  auto dwa = buildDwa("{}", tasks);
  REQUIRE_THROWS_WITH(dwa->onEpochEnd(EpochStats{0, {1.0}}),
                      Contains("epoch 0 reports 1 mean losses, expected 2"));
  dwa->onEpochEnd(EpochStats{0, {1.0, 0.0}});
  dwa->onEpochEnd(EpochStats{1, {1.0, 1.0}});
  REQUIRE_THROWS_WITH(dwa->currentWeights(),
                      Contains("mean loss of task b over the older epoch is 0"));
}

TEST_CASE("dwa: state round trip reproduces the next step", "[strategy][dwa]") {
  const auto tasks = makeTasks({"a", "b"});
  FixedGradients unused;

  SECTION("epoch mode") {
    auto trained = buildDwa("{}", tasks);
    trained->onEpochEnd(EpochStats{0, {1.0, 2.0}});
    trained->onEpochEnd(EpochStats{1, {0.8, 1.0}});
    trained->onEpochEnd(EpochStats{2, {0.4, 0.9}});
    auto restored = buildDwa("{}", tasks);
    restored->loadState(trained->state());
    CHECK(trained->state().at("history").size(0) == 2);  // only two epochs are needed

    const StepOutput a = stepWith(*trained, {1.0, 2.0}, unused, 30, 3);
    const StepOutput b = stepWith(*restored, {1.0, 2.0}, unused, 30, 3);
    CHECK(a.objective.item<double>() == b.objective.item<double>());
    CHECK(weightsOf(a) == weightsOf(b));
    // A fresh strategy would still apply λ = 1 here.
    auto fresh = buildDwa("{}", tasks);
    CHECK(weightsOf(stepWith(*fresh, {1.0, 2.0}, unused, 30, 3)) != weightsOf(a));
  }
  SECTION("window mode") {
    auto trained = buildDwa("{mode: window, window: 3}", tasks);
    for (int t = 0; t < 8; ++t) {
      stepWith(*trained, {1.0 / (1.0 + t), 1.0 + 0.1 * t}, unused, t);
    }
    auto restored = buildDwa("{mode: window, window: 3}", tasks);
    restored->loadState(trained->state());
    for (int t = 8; t < 10; ++t) {
      const StepOutput a = stepWith(*trained, {0.1, 2.0}, unused, t);
      const StepOutput b = stepWith(*restored, {0.1, 2.0}, unused, t);
      CHECK(weightsOf(a) == weightsOf(b));
      CHECK(a.objective.item<double>() == b.objective.item<double>());
      CHECK(weightsOf(a)[0] != Approx(1.0));
    }
    // A window-mode history does not fit an epoch-mode strategy.
    auto epochMode = buildDwa("{}", tasks);
    REQUIRE_THROWS_WITH(epochMode->loadState(trained->state()),
                        Contains("expected at most 2 rows of 2"));
  }
}
