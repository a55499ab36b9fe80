#include <catch2/catch.hpp>
#include <cmath>

#include "strategies/uncertainty.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;
using Catch::Matchers::Contains;

namespace {

std::unique_ptr<UncertaintyWeighting> buildUncertainty(const std::string& yaml,
                                                       const std::vector<TaskSpec>& tasks) {
  auto strategy =
      std::make_unique<UncertaintyWeighting>(readUncertaintyOptions(yamlNode(yaml), tasks), tasks);
  strategy->attach(makeContext(tasks));
  return strategy;
}

/// Sets s in place (as an optimiser step would).
void setLogVariance(UncertaintyWeighting& strategy, const std::vector<double>& s) {
  strategy.loadState({{"log_variance", torch::tensor(s, torch::kFloat64)}});
}

struct Evaluated {
  double objective;
  std::vector<double> dObjectiveDs;
  std::vector<double> weights;
};

Evaluated evaluate(UncertaintyWeighting& strategy, const std::vector<double>& lossValues) {
  torch::Tensor s = strategy.parameters().at(0);
  if (s.grad().defined()) s.grad().zero_();
  FixedGradients unused;
  const std::vector<torch::Tensor> losses = makeLosses(lossValues);
  const StepOutput out = strategy.step(StepInput{losses, unused, 0, 0});
  out.objective.backward();
  const torch::Tensor grad = s.grad().contiguous();
  return {out.objective.item<double>(),
          std::vector<double>(grad.data_ptr<double>(), grad.data_ptr<double>() + grad.numel()),
          weightsOf(out)};
}

}  // namespace

TEST_CASE("uncertainty: classification term exp(-s) L + s/2", "[strategy][uncertainty]") {
  const auto tasks = makeTasks({"label"}, TaskKind::kClassification);
  auto strategy = buildUncertainty("{}", tasks);
  CHECK(strategy->needs() == GradientNeed::kLosses);
  CHECK(strategy->coefficients() == std::vector<double>{1.0});

  // L = 2, s = 0: value 1·2 + 0 = 2; d/ds = −e^0·2 + ½ = −1.5; weight e^0 = 1.
  Evaluated at0 = evaluate(*strategy, {2.0});
  CHECK(at0.objective == Approx(2.0).epsilon(1e-12));
  CHECK(at0.dObjectiveDs[0] == Approx(-1.5).epsilon(1e-12));
  CHECK(at0.weights[0] == Approx(1.0));

  // L = 2, s = ln 4 (the optimum s* = ln 2L): value ¼·2 + ½ ln 4 = 0.5 + 0.693147;
  // d/ds = −¼·2 + ½ = 0; weight ¼.
  setLogVariance(*strategy, {std::log(4.0)});
  Evaluated atOptimum = evaluate(*strategy, {2.0});
  CHECK(atOptimum.objective == Approx(0.5 + std::log(2.0)).epsilon(1e-12));
  CHECK(atOptimum.dObjectiveDs[0] == Approx(0.0).margin(1e-12));
  CHECK(atOptimum.weights[0] == Approx(0.25).epsilon(1e-6));
}

TEST_CASE("uncertainty: regression term exp(-s) L / 2 + s/2", "[strategy][uncertainty]") {
  const auto tasks = makeTasks({"depth"}, TaskKind::kRegression);
  auto strategy = buildUncertainty("{}", tasks);
  CHECK(strategy->coefficients() == std::vector<double>{0.5});

  // L = 2, s = 0: value ½·2 = 1; d/ds = −½·2 + ½ = −0.5; weight ½.
  Evaluated at0 = evaluate(*strategy, {2.0});
  CHECK(at0.objective == Approx(1.0).epsilon(1e-12));
  CHECK(at0.dObjectiveDs[0] == Approx(-0.5).epsilon(1e-12));
  CHECK(at0.weights[0] == Approx(0.5));

  // L = 4, s = ln 2: value ½·½·4 + ½ ln 2 = 1 + 0.346574; d/ds = −1 + ½ = −0.5.
  setLogVariance(*strategy, {std::log(2.0)});
  Evaluated atLn2 = evaluate(*strategy, {4.0});
  CHECK(atLn2.objective == Approx(1.0 + 0.5 * std::log(2.0)).epsilon(1e-12));
  CHECK(atLn2.dObjectiveDs[0] == Approx(-0.5).epsilon(1e-12));
  CHECK(atLn2.weights[0] == Approx(0.25).epsilon(1e-6));
}

TEST_CASE("uncertainty: mixed tasks, exact and regression forms", "[strategy][uncertainty]") {
  std::vector<TaskSpec> tasks = {TaskSpec{"depth", TaskKind::kRegression, 1},
                                 TaskSpec{"label", TaskKind::kClassification, 10},
                                 TaskSpec{"edge", TaskKind::kBinary, 1}};
  // s = (0, ln 2, −ln 2), L = (2, 3, 1).
  const std::vector<double> s = {0.0, std::log(2.0), -std::log(2.0)};
  const std::vector<double> loss = {2.0, 3.0, 1.0};

  SECTION("exact: c = (1/2, 1, 1)") {
    auto strategy = buildUncertainty("{form: exact}", tasks);
    setLogVariance(*strategy, s);
    Evaluated e = evaluate(*strategy, loss);
    // weights c·e^{−s} = (0.5, 0.5, 2); value 0.5·2 + 0.5·3 + 2·1 + ½(0 + ln2 − ln2) = 4.5
    CHECK(e.objective == Approx(4.5).epsilon(1e-12));
    // d/ds_i = −c_i e^{−s_i} L_i + ½ = (−0.5, −1, −1.5)
    CHECK(e.dObjectiveDs[0] == Approx(-0.5).epsilon(1e-12));
    CHECK(e.dObjectiveDs[1] == Approx(-1.0).epsilon(1e-12));
    CHECK(e.dObjectiveDs[2] == Approx(-1.5).epsilon(1e-12));
    CHECK(e.weights[0] == Approx(0.5));
    CHECK(e.weights[1] == Approx(0.5));
    CHECK(e.weights[2] == Approx(2.0));
  }
  SECTION("regression: c = 1/2 for every task") {
    auto strategy = buildUncertainty("{form: regression}", tasks);
    CHECK(strategy->coefficients() == std::vector<double>{0.5, 0.5, 0.5});
    setLogVariance(*strategy, s);
    Evaluated e = evaluate(*strategy, loss);
    // weights ½e^{−s} = (0.5, 0.25, 1); value 1 + 0.75 + 1 + 0 = 2.75
    CHECK(e.objective == Approx(2.75).epsilon(1e-12));
    // d/ds_i = −½e^{−s_i} L_i + ½ = (−0.5, −0.25, −0.5)
    CHECK(e.dObjectiveDs[0] == Approx(-0.5).epsilon(1e-12));
    CHECK(e.dObjectiveDs[1] == Approx(-0.25).epsilon(1e-12));
    CHECK(e.dObjectiveDs[2] == Approx(-0.5).epsilon(1e-12));
    CHECK(e.weights[1] == Approx(0.25));
    CHECK(e.weights[2] == Approx(1.0));
  }
}

TEST_CASE("uncertainty: init_log_variance sets the initial s", "[strategy][uncertainty]") {
  const auto tasks = makeTasks({"a", "b"}, TaskKind::kClassification);
  auto strategy = buildUncertainty("{init_log_variance: -0.5}", tasks);
  CHECK(strategy->logVariances() == std::vector<double>{-0.5, -0.5});
  Evaluated e = evaluate(*strategy, {1.0, 1.0});
  // weights e^{0.5} = 1.648721; value 2·1.648721 + 2·(−0.25) = 2.797443
  CHECK(e.weights[0] == Approx(std::exp(0.5)).epsilon(1e-6));
  CHECK(e.objective == Approx(2.0 * std::exp(0.5) - 0.5).epsilon(1e-12));
}

TEST_CASE("uncertainty: s is trained by an optimizer through parameters()",
          "[strategy][uncertainty]") {
  // Classification, L = 2 fixed: the objective e^{−s}·2 + s/2 is minimal at s* = ln 4.
  const auto tasks = makeTasks({"label"}, TaskKind::kClassification);
  auto strategy = buildUncertainty("{}", tasks);
  torch::optim::SGD sgd(strategy->parameters(), torch::optim::SGDOptions(0.5));
  FixedGradients unused;
  for (int i = 0; i < 200; ++i) {
    sgd.zero_grad();
    const StepOutput out = stepWith(*strategy, {2.0}, unused);
    out.objective.backward();
    sgd.step();
  }
  CHECK(strategy->logVariances()[0] == Approx(std::log(4.0)).epsilon(1e-6));
}

TEST_CASE("uncertainty: option errors", "[strategy][uncertainty]") {
  const auto tasks = makeTasks({"a"});
  REQUIRE_THROWS_WITH(
      readUncertaintyOptions(yamlNode("{form: exakt}"), tasks),
      Contains("'exakt' is not one of: exact, regression") && Contains("did you mean 'exact'"));
  REQUIRE_THROWS_WITH(readUncertaintyOptions(yamlNode("{init_log_variance: 100}"), tasks),
                      Contains("strategy.init_log_variance") && Contains("in [-30, 30]"));
}

TEST_CASE("uncertainty: parameters() before attach() is an error", "[strategy][uncertainty]") {
  UncertaintyWeighting strategy(UncertaintyOptions{}, makeTasks({"a"}));
  REQUIRE_THROWS_WITH(strategy.parameters(), Contains("parameters() called before attach()"));
}

TEST_CASE("uncertainty: state round trip reproduces the next step", "[strategy][uncertainty]") {
  const auto tasks = makeTasks({"a", "b"}, TaskKind::kClassification);
  auto trained = buildUncertainty("{}", tasks);
  setLogVariance(*trained, {0.3, -0.7});

  auto restored = buildUncertainty("{}", tasks);
  const torch::Tensor parameterBefore = restored->parameters().at(0);
  const Evaluated fresh = evaluate(*restored, {1.5, 0.5});
  restored->loadState(trained->state());

  const Evaluated a = evaluate(*trained, {1.5, 0.5});
  const Evaluated b = evaluate(*restored, {1.5, 0.5});
  CHECK(a.objective == b.objective);
  CHECK(a.dObjectiveDs == b.dObjectiveDs);
  CHECK(a.weights == b.weights);
  // Without the restored state the step differs, so the equality above means something.
  CHECK(fresh.objective != Approx(a.objective));
  // The optimizer's reference still points at the restored values.
  CHECK(parameterBefore.data_ptr() == restored->parameters().at(0).data_ptr());
  CHECK(restored->logVariances() == std::vector<double>{0.3, -0.7});

  REQUIRE_THROWS_WITH(restored->loadState({}), Contains("checkpoint state lacks 'log_variance'"));
  REQUIRE_THROWS_WITH(restored->loadState({{"log_variance", torch::zeros({3}, torch::kFloat64)}}),
                      Contains("has 3 entries, expected 2"));
}
