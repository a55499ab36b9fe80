#include <catch2/catch.hpp>

#include "strategies/fixed.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;
using Catch::Matchers::Contains;

namespace {

std::unique_ptr<FixedWeights> buildFixed(const std::string& yaml,
                                         const std::vector<TaskSpec>& tasks) {
  const ConfigNode node = yamlNode(yaml);
  auto strategy = std::make_unique<FixedWeights>(readFixedOptions(node, tasks), tasks);
  strategy->attach(makeContext(tasks));
  return strategy;
}

}  // namespace

TEST_CASE("fixed: objective is the weighted sum of the losses", "[strategy][fixed]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  auto fixed = buildFixed("{weights: [2, 0.5, 1]}", tasks);
  FixedGradients unused;
  const std::vector<torch::Tensor> losses = makeLosses({1.0, 2.0, 3.0});
  const StepOutput out = fixed->step(StepInput{losses, unused, 0, 0});

  CHECK(fixed->needs() == GradientNeed::kLosses);
  CHECK(out.kind == StepOutput::Kind::kObjective);
  // 2·1 + 0.5·2 + 1·3 = 6
  CHECK(out.objective.item<double>() == Approx(6.0).epsilon(1e-12));
  CHECK(out.weights.scalar_type() == torch::kFloat32);
  CHECK_FALSE(out.weights.requires_grad());
  CHECK(weightsOf(out) == std::vector<double>{2.0, 0.5, 1.0});
  // d objective / d L_i = α_i.
  out.objective.backward();
  CHECK(losses[0].grad().item<double>() == Approx(2.0));
  CHECK(losses[1].grad().item<double>() == Approx(0.5));
  CHECK(losses[2].grad().item<double>() == Approx(1.0));
  CHECK(unused.lastLayerCalls + unused.sharedCalls == 0);
}

TEST_CASE("fixed: default weights are all 1 (equal weighting)", "[strategy][fixed]") {
  const auto tasks = makeTasks({"a", "b"});
  auto fixed = buildFixed("{}", tasks);
  FixedGradients unused;
  const StepOutput out = stepWith(*fixed, {1.5, 2.5}, unused);
  CHECK(out.objective.item<double>() == Approx(4.0));  // 1.5 + 2.5
  CHECK(weightsOf(out) == std::vector<double>{1.0, 1.0});
}

TEST_CASE("fixed: normalize divides the weights by their sum", "[strategy][fixed]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  auto fixed = buildFixed("{weights: [2, 0.5, 1], normalize: true}", tasks);
  FixedGradients unused;
  const StepOutput out = stepWith(*fixed, {1.0, 2.0, 3.0}, unused);
  // Σα = 3.5: α = (4/7, 1/7, 2/7); objective = 6 / 3.5 = 1.7142857...
  CHECK(out.objective.item<double>() == Approx(6.0 / 3.5).epsilon(1e-12));
  const std::vector<double> w = weightsOf(out);
  REQUIRE(w.size() == 3);
  CHECK(w[0] == Approx(4.0 / 7.0).epsilon(1e-6));
  CHECK(w[1] == Approx(1.0 / 7.0).epsilon(1e-6));
  CHECK(w[2] == Approx(2.0 / 7.0).epsilon(1e-6));
  CHECK(w[0] + w[1] + w[2] == Approx(1.0).epsilon(1e-6));
}

TEST_CASE("fixed: a wrong number of weights is a located ConfigError", "[strategy][fixed]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  const ConfigNode node = yamlNode("{weights: [1, 2]}");
  REQUIRE_THROWS_AS(readFixedOptions(node, tasks), ConfigError);
  REQUIRE_THROWS_WITH(readFixedOptions(node, tasks),
                      Contains("expected 3 weights (one per task: a, b, c), got 2"));
  // The message names the file, line and column of the key, and the key path.
  REQUIRE_THROWS_WITH(readFixedOptions(node, tasks), Contains("test.yaml:1:"));
  REQUIRE_THROWS_WITH(readFixedOptions(node, tasks), Contains("strategy.weights: "));
}

TEST_CASE("fixed: a weight that is not positive is a ConfigError naming the task",
          "[strategy][fixed]") {
  const auto tasks = makeTasks({"a", "b"});
  REQUIRE_THROWS_WITH(readFixedOptions(yamlNode("{weights: [1, 0]}"), tasks),
                      Contains("weights[1] (task b) must be a finite number > 0, got 0"));
  REQUIRE_THROWS_WITH(readFixedOptions(yamlNode("{weights: [-0.5, 1]}"), tasks),
                      Contains("weights[0] (task a) must be a finite number > 0, got -0.5"));
  REQUIRE_THROWS_AS(readFixedOptions(yamlNode("{weights: [-0.5, 1]}"), tasks), ConfigError);
}

TEST_CASE("fixed: the constructor validates options built in C++", "[strategy][fixed]") {
  const auto tasks = makeTasks({"a", "b"});
  REQUIRE_THROWS_WITH(FixedWeights(FixedOptions{{1.0}, false}, tasks),
                      Contains("expected 2 weights (one per task: a, b), got 1"));
  REQUIRE_THROWS_WITH(FixedWeights(FixedOptions{{1.0, -1.0}, false}, tasks),
                      Contains("weights[1] (task b)"));
}

TEST_CASE("fixed: attach rejects a model with other tasks", "[strategy][fixed]") {
  FixedWeights fixed(FixedOptions{}, makeTasks({"a", "b"}));
  REQUIRE_THROWS_WITH(fixed.attach(makeContext(makeTasks({"a", "c"}))),
                      Contains("attached to a model with tasks (a, c) but built for tasks (a, b)"));
}

TEST_CASE("fixed: a wrong number of losses is rejected", "[strategy][fixed]") {
  const auto tasks = makeTasks({"a", "b"});
  auto fixed = buildFixed("{}", tasks);
  FixedGradients unused;
  REQUIRE_THROWS_WITH(stepWith(*fixed, {1.0}, unused),
                      Contains("expected 2 losses (one per task), got 1"));
}
