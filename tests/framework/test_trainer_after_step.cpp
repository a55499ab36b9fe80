// The trainer's second forward pass for strategies that want the losses
// after the optimizer step (Strategy::wantsLossesAfterStep / afterStep).
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "framework/experiment.h"
#include "framework/trainer.h"
#include "models/registry.h"
#include "tests/support/memory_log.h"

using namespace fulcrum;
using namespace fulcrum::testing;

namespace {

/// Sums the losses times `factor`; records every afterStep() call.
struct Recording : Strategy {
  bool wants = true;
  double factor = 1.0;
  int stepsSinceAfter = 0;
  std::vector<std::vector<double>> after;
  GradientNeed needs() const override { return GradientNeed::kLosses; }
  StepOutput step(const StepInput& input) override {
    ++stepsSinceAfter;
    StepOutput out;
    out.objective = torch::stack(input.losses).sum() * factor;
    out.weights = torch::full({static_cast<int64_t>(input.losses.size())}, factor);
    return out;
  }
  bool wantsLossesAfterStep() const override { return wants; }
  void afterStep(const std::vector<double>& losses) override {
    REQUIRE(stepsSinceAfter == 1);  // exactly one afterStep() per step(), after it
    stepsSinceAfter = 0;
    after.push_back(losses);
  }
};

ExperimentSpec toy() {
  return parseExperiment(R"(
seed: 5
data: {kind: gradnorm_toy, sigmas: [1, 3], input_dim: 12, output_dim: 4,
       train_size: 120, val_size: 30, test_size: 30}
model: {trunk: {kind: mlp, hidden: [16, 8]}}
train: {epochs: 2, batch_size: 40, optimizer: {kind: adam, lr: 0.01}}
strategy: {name: anything}
)",
                         "toy.yaml");
}

}  // namespace

TEST_CASE("after-step losses: measured on the same batch, after the optimizer step",
          "[trainer][after_step]") {
  const ExperimentSpec spec = toy();
  const MultiTaskData data = loadData(spec);
  SECTION("a zero gradient leaves the model as it was: after == before, exactly") {
    // Adam with a zero gradient moves nothing (m = v = 0, update 0/(0 + eps)).
    Recording strategy;
    strategy.factor = 0.0;
    MemoryLog log;
    REQUIRE(train(spec, data, *makeModel(spec, data.inputShape), strategy, log, {}).status ==
            "completed");
    REQUIRE(log.steps.size() == 6);  // 2 epochs × 120/40
    REQUIRE(strategy.after.size() == 6);
    for (std::size_t k = 0; k < 6; ++k) REQUIRE(strategy.after[k] == log.steps[k].losses);
  }
  SECTION("a real step lowers the batch's losses") {
    Recording strategy;
    MemoryLog log;
    REQUIRE(train(spec, data, *makeModel(spec, data.inputShape), strategy, log, {}).status ==
            "completed");
    REQUIRE(strategy.after.size() == 6);
    for (std::size_t k = 0; k < 6; ++k) {
      REQUIRE(strategy.after[k] != log.steps[k].losses);
      REQUIRE(strategy.after[k][0] + strategy.after[k][1] <
              log.steps[k].losses[0] + log.steps[k].losses[1]);
    }
  }
  SECTION("strategies that do not ask get no extra pass") {
    Recording strategy;
    strategy.wants = false;
    strategy.stepsSinceAfter = -1000;  // afterStep() would fail its REQUIRE
    MemoryLog log;
    REQUIRE(train(spec, data, *makeModel(spec, data.inputShape), strategy, log, {}).status ==
            "completed");
    REQUIRE(strategy.after.empty());
  }
}
