#include <catch2/catch.hpp>

#include "strategies/stl.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;
using Catch::Matchers::Contains;

TEST_CASE("stl: the objective is the chosen task's loss alone", "[strategy][stl]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  SingleTask stl(readStlTask(yamlNode("{task: b}"), tasks), tasks);
  stl.attach(makeContext(tasks));
  FixedGradients unused;
  const std::vector<torch::Tensor> losses = makeLosses({1.0, 2.0, 3.0});
  const StepOutput out = stl.step(StepInput{losses, unused, 0, 0});
  CHECK(stl.needs() == GradientNeed::kLosses);
  CHECK(out.kind == StepOutput::Kind::kObjective);
  CHECK(out.objective.item<double>() == 2.0);
  CHECK(weightsOf(out) == std::vector<double>{0.0, 1.0, 0.0});
  // d objective / d L_i: 1 for b, an exact 0 for the others (in the graph).
  out.objective.backward();
  CHECK(losses[0].grad().item<double>() == 0.0);
  CHECK(losses[1].grad().item<double>() == 1.0);
  CHECK(losses[2].grad().item<double>() == 0.0);
}

TEST_CASE("stl: task defaults to the first; an unknown one is refused", "[strategy][stl]") {
  const auto tasks = makeTasks({"depth", "normal"});
  CHECK(readStlTask(yamlNode("{}"), tasks) == 0);
  CHECK(readStlTask(yamlNode("{task: normal}"), tasks) == 1);
  CHECK_THROWS_WITH(readStlTask(yamlNode("{task: segmentation}"), tasks),
                    Contains("task: no task 'segmentation' (tasks: depth, normal)"));
  CHECK_THROWS_AS(SingleTask(2, tasks), std::invalid_argument);
}
