#include <catch2/catch.hpp>
#include <algorithm>
#include <set>

#include "strategies/registry.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;
using Catch::Matchers::Contains;

TEST_CASE("registry: the table starts with the four mission strategies, names unique", "[strategy][registry]") {
  std::vector<std::string> names;
  for (const auto& row : strategyTable()) {
    names.push_back(row.name);
    CHECK_FALSE(row.description.empty());
    CHECK_FALSE(row.reference.empty());
    CHECK(row.make);
  }
  REQUIRE(names.size() >= 4);
  CHECK(std::vector<std::string>(names.begin(), names.begin() + 4) ==
        std::vector<std::string>{"fixed", "uncertainty", "gradnorm", "dwa"});
  CHECK(std::set<std::string>(names.begin(), names.end()).size() == names.size());
  CHECK(std::find(names.begin(), names.end(), "rlw") != names.end());
  CHECK(std::find(names.begin(), names.end(), "gls") != names.end());
}

TEST_CASE("registry: every row builds with default options for two tasks", "[strategy][registry]") {
  const auto tasks = makeTasks({"a", "b"});
  for (const auto& row : strategyTable()) {
    INFO("strategy " << row.name);
    std::unique_ptr<Strategy> strategy = makeStrategy(yamlNode("{name: " + row.name + "}"), tasks);
    REQUIRE(strategy != nullptr);
    CHECK(strategy->needs() == row.needs);
    strategy->attach(makeContext(tasks));
    FixedGradients gradients({{1.0, 2.0}, {0.5, 0.0}});
    const std::vector<torch::Tensor> losses = makeLosses({1.0, 2.0});
    const StepOutput out = strategy->step(StepInput{losses, gradients, 0, 0});
    if (out.kind == StepOutput::Kind::kObjective) {
      REQUIRE(out.objective.defined());
      CHECK(out.objective.dim() == 0);
    } else {
      // Gradient strategies: a combined gradient of length 2 (P, or B·D for
      // the strategies that work on the representation).
      CHECK(out.kind == (row.needs == GradientNeed::kRepresentation
                             ? StepOutput::Kind::kRepresentationGradient
                             : StepOutput::Kind::kSharedGradient));
      REQUIRE(out.direction.defined());
      CHECK(out.direction.sizes() == torch::IntArrayRef{2});
    }
    CHECK(out.weights.sizes() == torch::IntArrayRef{2});
    CHECK(out.weights.scalar_type() == torch::kFloat32);
    CHECK(out.diagnostics.size() == strategy->diagnosticNames().size());
  }
}

TEST_CASE("registry: the name picks the row and its options", "[strategy][registry]") {
  const auto tasks = makeTasks({"a", "b"});
  auto gradnorm = makeStrategy(yamlNode("{name: gradnorm, layer: all}"), tasks);
  CHECK(gradnorm->needs() == GradientNeed::kSharedParameters);
  auto fixed = makeStrategy(yamlNode("{name: fixed, weights: [3, 1]}"), tasks);
  FixedGradients unused;
  CHECK(stepWith(*fixed, {1.0, 1.0}, unused).objective.item<double>() == Approx(4.0));
}

TEST_CASE("registry: an unknown name lists the known names", "[strategy][registry]") {
  const auto tasks = makeTasks({"a", "b"});
  REQUIRE_THROWS_AS(makeStrategy(yamlNode("{name: xyzzy}"), tasks), ConfigError);
  REQUIRE_THROWS_WITH(
      makeStrategy(yamlNode("{name: xyzzy}"), tasks),
      Contains("strategy.name: unknown strategy 'xyzzy'; known: fixed, uncertainty, gradnorm, dwa"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: gradnrom}"), tasks),
                      Contains("unknown strategy 'gradnrom' (did you mean 'gradnorm'?); known: "
                               "fixed, uncertainty, gradnorm, dwa"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{alpha: 1}"), tasks),
                      Contains("strategy.name: required value is missing"));
}

TEST_CASE("registry: an unknown option names the closest known one", "[strategy][registry]") {
  const auto tasks = makeTasks({"a", "b"});
  REQUIRE_THROWS_AS(makeStrategy(yamlNode("{name: gradnorm, alpah: 0.5}"), tasks), ConfigError);
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: gradnorm, alpah: 0.5}"), tasks),
                      Contains("strategy.alpah: unknown key 'alpah' (did you mean 'alpha'?)"));
  // The options of one strategy are not valid for another.
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: fixed, temperature: 2}"), tasks),
                      Contains("unknown key 'temperature'"));
}
