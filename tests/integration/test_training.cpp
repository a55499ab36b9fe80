// The four strategies on the real trainer and data.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "framework/experiment.h"
#include "framework/trainer.h"
#include "strategies/registry.h"
#include "tests/support/train_experiment.h"

using namespace fulcrum;
using namespace fulcrum::testing;

namespace {

// The GradNorm toy of the paper, shortened: sigma = (1, 100).
const char* kToy = R"(
seed: 0
data: {kind: gradnorm_toy, sigmas: [1, 100], train_size: 3000, val_size: 200, test_size: 200}
model: {trunk: {kind: mlp, hidden: [100, 100, 100, 100]}}
train: {epochs: 6, batch_size: 100, optimizer: {kind: adam, lr: 0.001}}
strategy: {name: gradnorm, alpha: 0.12}
)";

}  // namespace

TEST_CASE("GradNorm on the toy raises the weight of the small-sigma task",
          "[integration][gradnorm]") {
  const MemoryLog log = trainExperiment(kToy, {});
  REQUIRE(log.status == "completed");
  const std::vector<double>& last = log.steps.back().weights;
  // Chen et al. (2018), section 5.1: the task with the smaller sigma (task0)
  // has the smaller gradients and ends with the larger weight.
  REQUIRE(last[0] > last[1]);
  REQUIRE(last[0] + last[1] == Approx(2.0).margin(1e-4));
  REQUIRE(log.steps.front().weights[0] == Approx(1.0));
}

// A small Multi-Fashion: real data, the LeNet trunk, two classification tasks.
const char* kFashion = R"(
seed: 1
data: {kind: multi_fashion, train_size: 3000, val_size: 500, test_size: 500}
train: {epochs: 2, batch_size: 64, optimizer: {kind: adam, lr: 0.002}}
strategy: {name: fixed}
)";

TEST_CASE("every registered strategy learns both tasks of a small Multi-Fashion", "[integration]") {
  for (const auto& row : strategyTable()) {
    DYNAMIC_SECTION(row.name) {
      const MemoryLog log = trainExperiment(kFashion, {"strategy={name: " + row.name + "}"});
      INFO(log.error);
      REQUIRE(log.status == "completed");
      REQUIRE(log.epochs.size() == 2);
      // Chance is 0.1; two short epochs reach about 0.5 (fixed weights).
      const auto& test = log.epochs.back().values[2];
      REQUIRE(test[0][1] > 0.3);
      if (row.name == "stl") {
        // One task alone (the first): the other head never moves from chance.
        REQUIRE(test[1][1] < 0.25);
        for (const auto& step : log.steps) REQUIRE(step.weights == std::vector<double>{1.0, 0.0});
        continue;
      }
      REQUIRE(test[1][1] > 0.3);
      for (const auto& step : log.steps) {
        for (double w : step.weights) REQUIRE(w > 0.0);
      }
    }
  }
}

TEST_CASE("DWA keeps weights at 1 for two epochs, then follows the loss ratios",
          "[integration][dwa]") {
  const MemoryLog log =
      trainExperiment(kToy, {"strategy={name: dwa}", "train.epochs=3", "data.train_size=600"});
  REQUIRE(log.status == "completed");
  for (const auto& step : log.steps) {
    if (step.epoch < 2) REQUIRE(step.weights == std::vector<double>{1.0, 1.0});
  }
  const std::vector<double>& third = log.steps.back().weights;
  REQUIRE(third[0] + third[1] == Approx(2.0));
  REQUIRE(third[0] != Approx(1.0).margin(1e-9));
}
