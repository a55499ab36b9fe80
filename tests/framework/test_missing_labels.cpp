// Missing labels: losses and metrics over the labelled rows only, and a task
// with no label in a batch gets no loss and no gradient.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "framework/experiment.h"
#include "framework/trainer.h"
#include "models/registry.h"
#include "tests/support/memory_log.h"

using namespace fulcrum;
using namespace fulcrum::testing;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

double softplus(double x) { return std::log1p(std::exp(x)); }

}  // namespace

TEST_CASE("labelledLoss averages over the labelled rows only", "[trainer][missing_labels]") {
  SECTION("binary: NaN is missing") {
    const torch::Tensor outputs = torch::tensor({0.0f, 1.0f, 2.0f, -1.0f}).reshape({4, 1});
    const torch::Tensor targets = torch::tensor({1.0f, kNaN, 0.0f, kNaN});
    // BCE with logits: target 1 → softplus(−o), target 0 → softplus(o); rows 0 and 2.
    const double expected = (softplus(-0.0) + softplus(2.0)) / 2.0;
    REQUIRE(labelledLoss(TaskKind::kBinary, outputs, targets).item<double>() ==
            Approx(expected).epsilon(1e-6));
  }
  SECTION("classification: kMissingClass is missing") {
    const torch::Tensor outputs =
        torch::tensor({1.0f, 0.0f, 0.0f, 5.0f, 5.0f, 5.0f, 0.0f, 0.0f, 2.0f}).reshape({3, 3});
    const torch::Tensor targets =
        torch::tensor({0, static_cast<int>(kMissingClass), 2}, torch::kInt64);
    // −log softmax: row 0 class 0: log(e + 2) − 1; row 2 class 2: log(2 + e²) − 2.
    const double expected =
        ((std::log(std::exp(1.0) + 2.0) - 1.0) + (std::log(2.0 + std::exp(2.0)) - 2.0)) / 2.0;
    REQUIRE(labelledLoss(TaskKind::kClassification, outputs, targets).item<double>() ==
            Approx(expected).epsilon(1e-6));
  }
  SECTION(
      "regression: a row with NaN anywhere is missing; the mean is over the labelled rows' "
      "elements") {
    const torch::Tensor outputs =
        torch::tensor({1.0f, 2.0f, 0.0f, 0.0f, 3.0f, 3.0f}).reshape({3, 2});
    const torch::Tensor targets =
        torch::tensor({0.0f, 0.0f, 1.0f, kNaN, 1.0f, 1.0f}).reshape({3, 2});
    // rows 0 and 2: (1 + 4 + 4 + 4) / 4.
    REQUIRE(labelledLoss(TaskKind::kRegression, outputs, targets).item<double>() ==
            Approx(13.0 / 4.0));
  }
  SECTION("no labelled row: an exact zero and a zero gradient") {
    const torch::Tensor outputs = torch::tensor({0.5f, -2.0f}).reshape({2, 1}).requires_grad_(true);
    const torch::Tensor loss =
        labelledLoss(TaskKind::kBinary, outputs, torch::tensor({kNaN, kNaN}));
    REQUIRE(loss.item<double>() == 0.0);
    loss.backward();
    REQUIRE(outputs.grad().abs().sum().item<double>() == 0.0);
  }
}

TEST_CASE(
    "training with a task never labelled: no loss, no gradient, finite metrics on labelled rows",
    "[trainer][missing_labels]") {
  ExperimentSpec spec = parseExperiment(R"(
seed: 3
data: {kind: gradnorm_toy, sigmas: [1, 3], input_dim: 6, output_dim: 2,
       train_size: 60, val_size: 20, test_size: 20}
model: {trunk: {kind: mlp, hidden: [8]}}
train: {epochs: 2, batch_size: 20, optimizer: {kind: adam, lr: 0.01}}
strategy: {name: anything}
)",
                                        "toy.yaml");
  MultiTaskData data = loadData(spec);
  // Task 1: no label in training; in val and test only the first half of the rows.
  data.train.targets[1].fill_(kNaN);
  for (Split* split : {&data.val, &data.test}) split->targets[1].narrow(0, 10, 10).fill_(kNaN);
  data.missingLabels = true;

  LambdaStrategy strategy;
  strategy.need = GradientNeed::kSharedParameters;
  strategy.absentTasks = true;
  int64_t masked = 0;
  strategy.onStep = [&](const StepInput& input) {
    REQUIRE(input.present == std::vector<bool>{true, false});
    const torch::Tensor& g = input.gradients.sharedParameters();
    REQUIRE(g[1].abs().sum().item<double>() == 0.0);  // the absent task's gradient row
    REQUIRE(g[0].abs().sum().item<double>() > 0.0);
    REQUIRE(input.losses[1].item<double>() == 0.0);
    ++masked;
    StepOutput out;
    out.kind = StepOutput::Kind::kSharedGradient;
    out.direction = g[0].clone();
    out.weights = torch::tensor({1.0f, 0.0f});
    return out;
  };
  MemoryLog log;
  const TrialResult result =
      train(spec, data, *makeModel(spec, data.inputShape), strategy, log, TrialDescription{});
  REQUIRE(result.status == "completed");
  REQUIRE(masked == 6);
  for (const auto& step : log.steps) {
    REQUIRE(std::isfinite(step.losses[0]));
    REQUIRE(std::isnan(step.losses[1]));  // no loss logged for the absent task
  }
  const auto& last = log.epochs.back();
  REQUIRE(std::isnan(last.values[0][1][0]));  // train: task 1 never labelled
  for (int split : {1, 2}) {
    for (double value : last.values[static_cast<std::size_t>(split)][1])
      REQUIRE(std::isfinite(value));
  }
}

TEST_CASE("metrics count labelled rows only", "[trainer][missing_labels]") {
  // Identical inputs give identical outputs, so over the labelled rows (all
  // label 1) the accuracy is exactly 0 or 1; counting the unlabelled rows
  // would give 1/2.
  ExperimentSpec spec = parseExperiment(R"(
seed: 1
data: {kind: gradnorm_toy, tasks: 1, input_dim: 3, output_dim: 1, train_size: 8, val_size: 4, test_size: 4}
model: {trunk: {kind: mlp, hidden: [4]}}
tasks: [{name: task0, kind: regression, outputs: 1}]
train: {epochs: 1, batch_size: 8}
strategy: {name: anything}
)",
                                        "toy.yaml");
  spec.tasks[0].kind = TaskKind::kBinary;
  MultiTaskData data;
  data.inputShape = {3};
  data.train.inputs = torch::randn({8, 3});
  data.train.targets = {torch::tensor({1.0f, 0.0f, 1.0f, 0.0f, kNaN, kNaN, 1.0f, 0.0f})};
  for (Split* split : {&data.val, &data.test}) {
    split->inputs = torch::ones({4, 3});
    split->targets = {torch::tensor({1.0f, 1.0f, kNaN, kNaN})};
  }
  data.missingLabels = true;
  LambdaStrategy strategy;
  strategy.absentTasks = true;
  strategy.onStep = [](const StepInput& input) {
    StepOutput out;
    out.objective = input.losses[0];
    out.weights = torch::ones({1});
    return out;
  };
  MemoryLog log;
  REQUIRE(train(spec, data, *makeModel(spec, data.inputShape), strategy, log, TrialDescription{})
              .status == "completed");
  const double accuracy = log.epochs.back().values[1][0][1];
  REQUIRE((accuracy == 0.0 || accuracy == 1.0));
}
