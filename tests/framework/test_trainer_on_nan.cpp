// Non-finite losses, weights and gradients: `train.on_nan: fail` ends the
// trial naming the task, step and quantity; `skip_step` skips that batch's
// optimizer step, counts it per epoch and goes on.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>

#include "framework/experiment.h"
#include "framework/trainer.h"
#include "models/registry.h"
#include "tests/support/memory_log.h"

using namespace fulcrum;
using namespace fulcrum::testing;

namespace {

/// 120 examples, batches of 40: 3 steps per epoch, 2 epochs.
ExperimentSpec smallToy(const std::string& onNan, std::vector<std::string> overrides = {}) {
  overrides.push_back("train.on_nan=" + onNan);
  return parseExperiment(R"(
seed: 3
data: {kind: gradnorm_toy, sigmas: [1, 3], input_dim: 12, output_dim: 4,
       train_size: 120, val_size: 30, test_size: 30}
model: {trunk: {kind: mlp, hidden: [16, 8]}}
train: {epochs: 2, batch_size: 40, optimizer: {kind: adam, lr: 0.01}}
strategy: {name: anything}
)",
                         "toy.yaml", overrides);
}

/// A shared-parameter direction that is NaN at `badStep`, the plain sum elsewhere.
LambdaStrategy nanDirectionAt(int64_t badStep) {
  LambdaStrategy strategy;
  strategy.need = GradientNeed::kSharedParameters;
  strategy.onStep = [badStep](const StepInput& input) {
    StepOutput out;
    out.kind = StepOutput::Kind::kSharedGradient;
    out.direction = input.gradients.sharedParameters().sum(0).clone();
    if (input.step == badStep) out.direction[3] = NAN;
    out.weights = torch::ones({2});
    return out;
  };
  return strategy;
}

bool allFinite(const EpochRecord& epoch) {
  for (const auto& split : epoch.values)
    for (const auto& task : split)
      for (double v : task)
        if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace

TEST_CASE("train.on_nan accepts fail and skip_step only", "[trainer][on_nan]") {
  REQUIRE(smallToy("fail").train.onNan == "fail");
  REQUIRE(smallToy("skip_step").train.onNan == "skip_step");
  REQUIRE_THROWS_WITH(
      smallToy("ignore"),
      "--set train.on_nan=ignore: train.on_nan: 'ignore' is not one of: fail, skip_step");
}

TEST_CASE("a NaN combined gradient fails the trial naming the quantity and step",
          "[trainer][on_nan]") {
  const ExperimentSpec spec = smallToy("fail");
  const MultiTaskData data = loadData(spec);
  LambdaStrategy strategy = nanDirectionAt(2);
  MemoryLog log;
  const TrialResult result =
      train(spec, data, *makeModel(spec, data.inputShape), strategy, log, {});
  REQUIRE(result.status == "failed");
  REQUIRE(result.error ==
          "combined gradient (direction) of the shared parameters is NaN at step 2 (epoch 1)");
  REQUIRE(log.steps.size() == 2);
  REQUIRE_FALSE(log.description.countsSkippedSteps);
}

TEST_CASE("an infinite objective gradient names the first task whose head gets it",
          "[trainer][on_nan]") {
  const ExperimentSpec spec = smallToy("fail");
  const MultiTaskData data = loadData(spec);
  LambdaStrategy strategy;
  strategy.onStep = [](const StepInput& input) {
    StepOutput out = equalObjective(input);
    // Finite losses and weights, but an infinite gradient on task 1's head.
    if (input.step == 1)
      out.objective = out.objective + input.losses[1] * std::numeric_limits<float>::infinity();
    return out;
  };
  MemoryLog log;
  const TrialResult result =
      train(spec, data, *makeModel(spec, data.inputShape), strategy, log, {});
  REQUIRE(result.status == "failed");
  // inf times a zero partial derivative is NaN, so either may be reported.
  REQUIRE_THAT(result.error,
               Catch::Matchers::StartsWith("gradient of task 'task1' (its head) is ") &&
                   Catch::Matchers::EndsWith(" at step 1 (epoch 1)"));
}

TEST_CASE("skip_step skips a NaN direction, counts it and trains on", "[trainer][on_nan]") {
  const ExperimentSpec spec = smallToy("skip_step");
  const MultiTaskData data = loadData(spec);
  LambdaStrategy strategy = nanDirectionAt(2);
  MemoryLog log;
  std::vector<std::string> warnings;
  TrainHooks hooks;
  hooks.warning = [&](const std::string& line) { warnings.push_back(line); };
  const TrialResult result =
      train(spec, data, *makeModel(spec, data.inputShape), strategy, log, {}, hooks);
  REQUIRE(result.status == "completed");
  REQUIRE(result.skippedSteps == 1);
  REQUIRE(log.description.countsSkippedSteps);
  REQUIRE(log.steps.size() == 5);  // 6 steps, step 2 not logged
  REQUIRE(log.steps[2].step == 3);
  REQUIRE(log.epochs.size() == 2);
  REQUIRE(log.epochs[0].skippedSteps == 1);
  REQUIRE(log.epochs[1].skippedSteps == 0);
  REQUIRE(allFinite(log.epochs[1]));
  REQUIRE(warnings ==
          std::vector<std::string>{
              "combined gradient (direction) of the shared parameters is NaN at step 2 (epoch 1); "
              "optimizer step skipped (train.on_nan: skip_step)"});
}

TEST_CASE("a skipped step changes no parameter", "[trainer][on_nan]") {
  // With plain SGD a zero gradient changes nothing, so skipping step 1 must
  // give the same curves as a run whose step 1 has zero direction and weights.
  const ExperimentSpec spec = smallToy("skip_step", {"train.optimizer={kind: sgd, lr: 0.05}"});
  const MultiTaskData data = loadData(spec);
  LambdaStrategy zero = nanDirectionAt(-1);
  zero.onStep = [](const StepInput& input) {
    StepOutput out;
    out.kind = StepOutput::Kind::kSharedGradient;
    out.direction = input.gradients.sharedParameters().sum(0).clone();
    out.weights = torch::ones({2});
    if (input.step == 1) {
      out.direction.zero_();
      out.weights.zero_();
    }
    return out;
  };
  LambdaStrategy skipping = nanDirectionAt(1);
  MemoryLog reference, skipped;
  REQUIRE(train(spec, data, *makeModel(spec, data.inputShape), zero, reference, {}).status ==
          "completed");
  REQUIRE(train(spec, data, *makeModel(spec, data.inputShape), skipping, skipped, {}).status ==
          "completed");
  REQUIRE(reference.steps.size() == 6);
  REQUIRE(skipped.steps.size() == 5);
  REQUIRE(skipped.steps[0].losses == reference.steps[0].losses);
  for (std::size_t k = 1; k < skipped.steps.size(); ++k) {
    REQUIRE(skipped.steps[k].step == reference.steps[k + 1].step);
    REQUIRE(skipped.steps[k].losses == reference.steps[k + 1].losses);
  }
  REQUIRE(skipped.epochs[1].values == reference.epochs[1].values);
}

TEST_CASE("skip_step skips the batches whose loss is NaN", "[trainer][on_nan]") {
  const ExperimentSpec spec = smallToy("skip_step");
  MultiTaskData data = loadData(spec);
  data.train.targets[0][17][2] = NAN;  // one example: one batch per epoch
  LambdaStrategy strategy;
  strategy.onStep = equalObjective;
  MemoryLog log;
  std::vector<std::string> warnings;
  TrainHooks hooks;
  hooks.warning = [&](const std::string& line) { warnings.push_back(line); };
  const TrialResult result =
      train(spec, data, *makeModel(spec, data.inputShape), strategy, log, {}, hooks);
  REQUIRE(result.status == "completed");
  REQUIRE(result.skippedSteps == 2);
  REQUIRE(log.epochs[0].skippedSteps == 1);
  REQUIRE(log.epochs[1].skippedSteps == 1);
  REQUIRE(log.steps.size() == 4);
  for (const auto& step : log.steps) REQUIRE(std::isfinite(step.losses[0]));
  REQUIRE(warnings.size() == 2);
  REQUIRE(warnings[0].rfind("loss of task 'task0' is NaN at step ", 0) == 0);
  // The epoch's mean training loss averages the steps taken, not NaN.
  REQUIRE(std::isfinite(log.epochs[0].values[0][0][0]));
}

TEST_CASE("skip_step still fails when a whole epoch is skipped", "[trainer][on_nan]") {
  const ExperimentSpec spec = smallToy("skip_step");
  MultiTaskData data = loadData(spec);
  data.train.targets[1].fill_(std::nan(""));
  LambdaStrategy strategy;
  strategy.onStep = equalObjective;
  MemoryLog log;
  const TrialResult result =
      train(spec, data, *makeModel(spec, data.inputShape), strategy, log, {});
  REQUIRE(result.status == "failed");
  REQUIRE(result.error == "every step of epoch 1 was skipped for non-finite values");
  REQUIRE(result.skippedSteps == 3);
  REQUIRE(log.steps.empty());
}

TEST_CASE("skip_step skips an infinite weight", "[trainer][on_nan]") {
  const ExperimentSpec spec = smallToy("skip_step");
  const MultiTaskData data = loadData(spec);
  LambdaStrategy strategy;
  strategy.onStep = [](const StepInput& input) {
    StepOutput out = equalObjective(input);
    if (input.step == 4) out.weights[0] = INFINITY;
    return out;
  };
  MemoryLog log;
  const TrialResult result =
      train(spec, data, *makeModel(spec, data.inputShape), strategy, log, {});
  REQUIRE(result.status == "completed");
  REQUIRE(result.skippedSteps == 1);
  REQUIRE(log.epochs[1].skippedSteps == 1);
}
