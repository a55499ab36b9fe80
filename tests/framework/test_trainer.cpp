#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <functional>

#include "framework/experiment.h"
#include "framework/gradients.h"
#include "framework/model.h"
#include "framework/trainer.h"
#include "framework/update.h"
#include "framework/warning_capture.h"
#include "models/registry.h"
#include "tests/support/memory_log.h"

using namespace fulcrum;
using namespace fulcrum::testing;

namespace {

ExperimentSpec smallToy(uint64_t seed = 3) {
  ExperimentSpec spec = parseExperiment(R"(
seed: 3
data: {kind: gradnorm_toy, sigmas: [1, 3], input_dim: 12, output_dim: 4,
       train_size: 120, val_size: 30, test_size: 30}
model: {trunk: {kind: mlp, hidden: [16, 8]}}
train: {epochs: 2, batch_size: 40, optimizer: {kind: adam, lr: 0.01}}
strategy: {name: anything}
)",
                                        "toy.yaml");
  spec.seed = seed;
  return spec;
}

}  // namespace

TEST_CASE("same seed gives identical curves, another seed different ones", "[trainer]") {
  auto run = [](uint64_t seed) {
    const ExperimentSpec spec = smallToy(seed);
    const MultiTaskData data = loadData(spec);
    LambdaStrategy strategy;
    strategy.onStep = equalObjective;
    MemoryLog log;
    const TrialResult result =
        train(spec, data, *makeModel(spec, data.inputShape), strategy, log, {});
    REQUIRE(result.status == "completed");
    return log;
  };
  const MemoryLog a = run(3), b = run(3), c = run(4);
  REQUIRE(a.steps.size() == 6);  // 120 examples / 40 per batch × 2 epochs
  REQUIRE(a.epochs.size() == 2);
  for (std::size_t i = 0; i < a.steps.size(); ++i) REQUIRE(a.steps[i].losses == b.steps[i].losses);
  REQUIRE(a.epochs[1].values == b.epochs[1].values);
  REQUIRE(a.steps[0].losses != c.steps[0].losses);
  REQUIRE(a.status == "completed");
  // train, val, test × 2 tasks × {loss, mse, mae}
  REQUIRE(a.epochs[0].values.size() == 3);
  REQUIRE(a.epochs[0].values[2][1].size() == 3);
  REQUIRE(a.description.tasks == std::vector<std::string>{"task0", "task1"});
  // Each metric's direction comes with its name, from the task-kind table.
  REQUIRE(a.description.metrics[1] == std::vector<std::string>{"loss", "mse", "mae"});
  REQUIRE(a.description.higherIsBetter[1] == std::vector<bool>{false, false, false});
}

TEST_CASE("the task-kind table names every kind, its metrics and their directions", "[trainer]") {
  REQUIRE(taskKindTable().size() == 6);
  for (const TaskKind kind : {TaskKind::kRegression, TaskKind::kClassification, TaskKind::kBinary,
                              TaskKind::kSegmentation, TaskKind::kDepth, TaskKind::kNormals}) {
    const TaskKindInfo& info = taskKindInfo(kind);
    CHECK(info.kind == kind);
    CHECK(toString(kind) == info.name);
    REQUIRE(metricNames(kind).size() == metricDirections(kind).size());
    CHECK(metricNames(kind).front() == "loss");
    CHECK_FALSE(metricDirections(kind).front());  // a loss: lower is better
  }
  CHECK(metricNames(TaskKind::kClassification) == std::vector<std::string>{"loss", "accuracy"});
  CHECK(metricDirections(TaskKind::kClassification) == std::vector<bool>{false, true});
  CHECK(metricDirections(TaskKind::kBinary) == std::vector<bool>{false, true, true, false, true});
  CHECK_THROWS_AS(taskKindInfo(static_cast<TaskKind>(7)), std::invalid_argument);
}

TEST_CASE("each task kind's row computes its loss, labelled rows and metric sums", "[trainer]") {
  auto sums = [](const TaskKindInfo& info, const torch::Tensor& outputs,
                 const torch::Tensor& targets) {
    std::vector<double> values(info.sumCount(outputs.size(1)), 0.0);
    info.addMetrics(outputs, targets, values.data());
    return info.metricsOf(values.data(), outputs.size(0), outputs.size(1));
  };
  SECTION("regression: squared and absolute errors over the elements") {
    const TaskKindInfo& info = taskKindInfo(TaskKind::kRegression);
    const torch::Tensor outputs = torch::tensor({{1.0, 2.0}, {3.0, 5.0}});
    const torch::Tensor targets = torch::ones({2, 2});
    // Errors 0, 1, 2, 4: squares sum to 21, absolutes to 7, over 4 elements.
    CHECK(info.lossOf(outputs, targets).item<double>() == Approx(5.25));
    CHECK(sums(info, outputs, targets) == std::vector<double>{5.25, 1.75});
    CHECK(info.fits(outputs, targets));
    CHECK_FALSE(info.fits(outputs, torch::ones({2})));
    const torch::Tensor known = info.known(torch::tensor({{1.0, std::nan("")}, {0.0, 2.0}}));
    CHECK(known.equal(torch::tensor({false, true})));
  }
  SECTION("classification: cross-entropy and the correct argmax") {
    const TaskKindInfo& info = taskKindInfo(TaskKind::kClassification);
    const torch::Tensor outputs = torch::tensor({{2.0, 1.0}, {0.0, 3.0}, {1.0, 0.0}});
    const torch::Tensor targets = torch::tensor({0, 1, 1}, torch::kInt64);
    // −log softmax: log(1 + e^−1), log(1 + e^−3), log(1 + e^1).
    const double expected =
        (std::log1p(std::exp(-1.0)) + std::log1p(std::exp(-3.0)) + std::log1p(std::exp(1.0))) / 3;
    CHECK(info.lossOf(outputs, targets).item<double>() == Approx(expected));
    CHECK(sums(info, outputs, targets)[0] == Approx(2.0 / 3.0));
    CHECK(info.fits(outputs, targets));
    CHECK(info.known(torch::tensor({-1, 0}, torch::kInt64)).equal(torch::tensor({false, true})));
  }
  SECTION("binary: logits against 0/1 labels, positive logit = 1") {
    const TaskKindInfo& info = taskKindInfo(TaskKind::kBinary);
    const torch::Tensor outputs = torch::tensor({{2.0}, {-1.0}});
    const torch::Tensor targets = torch::tensor({1.0, 1.0});
    const double expected = (std::log1p(std::exp(-2.0)) + std::log1p(std::exp(1.0))) / 2;
    CHECK(info.lossOf(outputs, targets).item<double>() == Approx(expected));
    const std::vector<double> metrics = sums(info, outputs, targets);
    CHECK(metrics[0] == 0.5);
    CHECK(std::isnan(metrics[1]));  // no negative row: no AUC
    CHECK(metrics[2] == Approx(expected));
    CHECK_FALSE(info.fits(torch::zeros({2, 2}), targets));
    CHECK(info.known(torch::tensor({std::nan(""), 0.0})).equal(torch::tensor({false, true})));
  }
}

TEST_CASE("binary: AUC and log-loss by hand, and the histogram AUC against the exact one",
          "[trainer]") {
  const TaskKindInfo& info = taskKindInfo(TaskKind::kBinary);
  auto metricsOf = [&info](const torch::Tensor& outputs, const torch::Tensor& targets) {
    std::vector<double> values(info.sumCount(1), 0.0);
    info.addMetrics(outputs, targets, values.data());
    return info.metricsOf(values.data(), outputs.size(0), 1);
  };
  auto logit = [](double p) { return std::log(p / (1 - p)); };
  // Positives at 0.9 and 0.4, negatives at 0.6 and 0.1: 3 of the 4 pairs
  // ordered correctly; 0.9 and 0.1 classified correctly.
  const torch::Tensor outputs =
      torch::tensor({logit(0.9), logit(0.4), logit(0.6), logit(0.1)}, torch::kFloat64)
          .reshape({4, 1});
  const torch::Tensor targets = torch::tensor({1.0, 1.0, 0.0, 0.0}, torch::kFloat64);
  const std::vector<double> metrics = metricsOf(outputs, targets);
  CHECK(metrics[0] == 0.5);
  CHECK(metrics[1] == Approx(0.75));
  CHECK(metrics[2] == Approx(-(std::log(0.9) + std::log(0.4) + std::log(0.4) + std::log(0.9)) / 4));
  // TP 1 (0.9), FN 1 (0.4), FP 1 (0.6): F1 = 2 / (2 + 1 + 1).
  CHECK(metrics[3] == Approx(0.5));
  // 3000 rows, scores correlated with the labels: the exact AUC by counting
  // pairs, against the histogram's, within half the share of pairs in one bin.
  torch::manual_seed(5);
  const torch::Tensor y = torch::rand({3000}, torch::kFloat64).lt(0.3).to(torch::kFloat64);
  const torch::Tensor x = (torch::randn({3000}, torch::kFloat64) + 1.2 * y).reshape({3000, 1});
  const torch::Tensor p = torch::sigmoid(x.squeeze(1));
  const torch::Tensor pos = p.masked_select(y.gt(0.5)), neg = p.masked_select(y.lt(0.5));
  const torch::Tensor diff = pos.unsqueeze(1) - neg.unsqueeze(0);
  const double pairs = static_cast<double>(pos.numel() * neg.numel());
  const double exact =
      (diff.gt(0).sum().item<double>() + 0.5 * diff.eq(0).sum().item<double>()) / pairs;
  const torch::Tensor sameBin =
      (pos.unsqueeze(1) * 1e4).floor().eq((neg.unsqueeze(0) * 1e4).floor());
  const double bound = 0.5 * sameBin.sum().item<double>() / pairs;
  const double histogram = metricsOf(x, y)[1];
  INFO("exact " << exact << ", histogram " << histogram << ", bound " << bound);
  CHECK(std::abs(histogram - exact) <= bound + 1e-12);
  CHECK(bound < 1e-3);
}

TEST_CASE("a NaN loss fails the trial naming the task and step", "[trainer]") {
  const ExperimentSpec spec = smallToy();
  MultiTaskData data = loadData(spec);
  data.train.targets[1].fill_(std::nan(""));
  LambdaStrategy strategy;
  strategy.onStep = equalObjective;
  MemoryLog log;
  const TrialResult result =
      train(spec, data, *makeModel(spec, data.inputShape), strategy, log, {});
  REQUIRE(result.status == "failed");
  REQUIRE(result.error == "loss of task 'task1' is NaN at step 0 (epoch 1)");
  REQUIRE(log.status == "failed");
  REQUIRE(log.error == result.error);
  REQUIRE(log.steps.empty());
}

TEST_CASE("an infinite weight fails the trial and keeps the steps before it", "[trainer]") {
  const ExperimentSpec spec = smallToy();
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
  REQUIRE(result.status == "failed");
  REQUIRE(result.error == "weight of task 'task0' is infinite at step 4 (epoch 2)");
  REQUIRE(log.steps.size() == 4);
  REQUIRE(log.epochs.size() == 1);
}

TEST_CASE("the gradient source gives each task's own gradient, once per step",
          "[trainer][gradients]") {
  torch::manual_seed(0);
  const ExperimentSpec spec = smallToy();
  const std::vector<TaskSpec> tasks = spec.tasks;
  const auto model = makeModel(spec, std::vector<int64_t>{12});
  const torch::Tensor x = torch::randn({5, 12});
  const ModelOutput forward = model->forward({x});
  REQUIRE(forward.features.size() == 1);
  const torch::Tensor z = forward.features[0];
  std::vector<torch::Tensor> losses;
  for (std::size_t t = 0; t < tasks.size(); ++t)
    losses.push_back(forward.outputs[t].square().mean() * (t + 1.0));

  AutogradGradientSource source(model->sharedParameters(), model->lastSharedLayer());
  source.reset(losses, forward.features);
  const torch::Tensor shared = source.sharedParameters().clone();
  const torch::Tensor last = source.lastSharedLayer().clone();
  const torch::Tensor rep = source.representation().clone();
  source.sharedParameters();  // cached: no further passes
  REQUIRE(source.backwardPasses() == 3 * 2);
  REQUIRE(shared.sizes() == torch::IntArrayRef({2, countElements(model->sharedParameters())}));
  REQUIRE(last.size(1) == 8 * 16 + 8);
  REQUIRE(rep.sizes() == torch::IntArrayRef({2, 5 * 8}));

  for (std::size_t t = 0; t < 2; ++t) {
    auto expected = torch::autograd::grad({losses[t]}, model->sharedParameters(), {}, true);
    std::vector<torch::Tensor> flat;
    for (auto& g : expected) flat.push_back(g.reshape(-1));
    REQUIRE(torch::allclose(shared[t], torch::cat(flat)));
    // The last shared layer is the last Linear of the trunk: its weight and bias close the row.
    REQUIRE(torch::allclose(
        last[t], torch::cat(flat).narrow(0, shared.size(1) - last.size(1), last.size(1))));
    auto zGrad = torch::autograd::grad({losses[t]}, {z}, {}, true);
    REQUIRE(torch::allclose(rep[t], zGrad[0].reshape(-1)));
  }
  // The two tasks' gradients differ (each went through its own head only).
  REQUIRE_FALSE(torch::allclose(shared[0], shared[1]));
}

TEST_CASE("a combined gradient equal to the sum trains exactly like the summed loss",
          "[trainer][gradients]") {
  const ExperimentSpec spec = smallToy();
  const MultiTaskData data = loadData(spec);
  auto finalLosses = [&](LambdaStrategy& strategy) {
    MemoryLog log;
    REQUIRE(train(spec, data, *makeModel(spec, data.inputShape), strategy, log, {}).status ==
            "completed");
    return log.epochs.back().values[2];
  };
  LambdaStrategy objective;
  objective.onStep = equalObjective;
  LambdaStrategy shared;
  shared.need = GradientNeed::kSharedParameters;
  shared.onStep = [](const StepInput& input) {
    StepOutput out;
    out.kind = StepOutput::Kind::kSharedGradient;
    out.direction = input.gradients.sharedParameters().sum(0);
    out.weights = torch::ones({2});
    return out;
  };
  LambdaStrategy representation;
  representation.need = GradientNeed::kRepresentation;
  representation.onStep = [](const StepInput& input) {
    StepOutput out;
    out.kind = StepOutput::Kind::kRepresentationGradient;
    out.direction = input.gradients.representation().sum(0);
    out.weights = torch::ones({2});
    return out;
  };
  const auto expected = finalLosses(objective);
  const auto viaShared = finalLosses(shared);
  const auto viaRepresentation = finalLosses(representation);
  for (std::size_t t = 0; t < 2; ++t) {
    for (std::size_t m = 0; m < expected[t].size(); ++m) {
      REQUIRE(viaShared[t][m] == Approx(expected[t][m]).epsilon(1e-4));
      REQUIRE(viaRepresentation[t][m] == Approx(expected[t][m]).epsilon(1e-4));
    }
  }
}

TEST_CASE("a strategy's own parameters are trained without weight decay", "[trainer]") {
  ExperimentSpec spec = smallToy();
  spec.train.optimizer.weightDecay = 0.5;
  const MultiTaskData data = loadData(spec);
  struct Learned : LambdaStrategy {
    torch::Tensor scale = torch::zeros({2}, torch::requires_grad());
    std::vector<torch::Tensor> parameters() override { return {scale}; }
  } strategy;
  strategy.onStep = [&strategy](const StepInput& input) {
    StepOutput out;
    // d/ds of exp(s)·L is positive: Adam moves s down by about lr per step.
    out.objective = (strategy.scale.exp() * torch::stack(input.losses)).sum();
    out.weights = strategy.scale.exp().detach();
    return out;
  };
  MemoryLog log;
  REQUIRE(train(spec, data, *makeModel(spec, data.inputShape), strategy, log, {}).status ==
          "completed");
  // Six Adam steps of lr 0.01 against a consistently signed gradient.
  REQUIRE(strategy.scale[0].item<double>() == Approx(-0.06).margin(0.005));
  REQUIRE(log.steps.back().weights[0] == Approx(std::exp(-0.05)).margin(0.01));
}

TEST_CASE("a LibTorch warning during a trial fails it, naming the warning and the step",
          "[trainer][warnings]") {
  const ExperimentSpec spec = smallToy();
  const MultiTaskData data = loadData(spec);
  LambdaStrategy strategy;
  strategy.onStep = [](const StepInput& input) {
    if (input.step == 2) TORCH_WARN("fulcrum test warning at step ", input.step);
    return equalObjective(input);
  };
  MemoryLog log;
  TrialResult result;
  c10::WarningHandler* before = c10::Warning::get_warning_handler();
  {
    WarningCapture warnings;  // over the test main's handler, which would fail this test case
    TrainHooks hooks;
    hooks.pendingWarning = [&warnings] { return warnings.takeSummary(); };
    result = train(spec, data, *makeModel(spec, data.inputShape), strategy, log, {}, hooks);
    REQUIRE(warnings.take().empty());  // taken by the trainer
  }
  REQUIRE(c10::Warning::get_warning_handler() == before);  // restored
  REQUIRE(result.status == "failed");
  REQUIRE_THAT(result.error,
               Catch::StartsWith(
                   "LibTorch warning at step 2 (epoch 1): fulcrum test warning at step 2 (at ") &&
                   Catch::Contains("test_trainer.cpp:"));
  REQUIRE(log.status == "failed");
  REQUIRE(log.error == result.error);
  REQUIRE(log.steps.size() == 2);  // steps 0 and 1; step 2 is not logged
}

TEST_CASE("WarningCapture collects TORCH_WARN_ONCE every time and summarises", "[warnings]") {
  WarningCapture warnings;
  for (int i = 0; i < 3; ++i) TORCH_WARN_ONCE("once ", i);
  REQUIRE(warnings.takeSummary().rfind("once 0 (at ", 0) == 0);
  REQUIRE(warnings.takeSummary().empty());
  TORCH_WARN("a");
  TORCH_WARN("b");
  REQUIRE_THAT(warnings.takeSummary(),
               Catch::StartsWith("a (at ") && Catch::EndsWith("(and 1 more warning)"));
}

// The test main turns any LibTorch warning into a failure of the test case
// (tests/test_main.cpp); [!shouldfail] passes only if this test case fails.
TEST_CASE("a LibTorch warning fails the test case that caused it", "[warnings][!shouldfail]") {
  TORCH_WARN("this warning must fail the test case, not reach stderr");
  REQUIRE(true);
}

TEST_CASE("applyUpdate: what each kind of StepOutput puts into the gradients",
          "[trainer][gradients]") {
  // θ shared (2), φ task 0's own; L0 = aᵀθ + 5φ, L1 = bᵀθ; z = 2θ the features.
  const torch::Tensor theta = torch::tensor({1.0, -1.0}, torch::kFloat64).requires_grad_(true);
  const torch::Tensor phi = torch::tensor({0.5}, torch::kFloat64).requires_grad_(true);
  auto losses = [&] {
    return std::vector<torch::Tensor>{
        torch::dot(torch::tensor({1.0, 2.0}, torch::kFloat64), theta) + 5.0 * phi.sum(),
        torch::dot(torch::tensor({3.0, 0.0}, torch::kFloat64), theta)};
  };
  auto clear = [&] {
    theta.mutable_grad() = torch::Tensor();
    phi.mutable_grad() = torch::Tensor();
  };
  const torch::Tensor weights = torch::tensor({2.0, 3.0}, torch::kFloat64);
  SECTION("shared gradient: θ gets the direction, φ its task's weighted gradient") {
    const std::vector<torch::Tensor> l = losses();
    StepOutput update;
    update.kind = StepOutput::Kind::kSharedGradient;
    update.direction = torch::tensor({0.25, -4.0}, torch::kFloat64);
    update.weights = weights;
    applyUpdate(update, UpdateTargets{{theta}, {phi}, l, {}});
    CHECK(theta.grad().equal(torch::tensor({0.25, -4.0}, torch::kFloat64)));
    CHECK(phi.grad().item<double>() == 10.0);  // w0 · ∂L0/∂φ = 2 · 5
  }
  SECTION("representation gradient: back-propagated from the features") {
    clear();
    const std::vector<torch::Tensor> l = losses();
    const torch::Tensor z = 2.0 * theta;
    StepOutput update;
    update.kind = StepOutput::Kind::kRepresentationGradient;
    update.direction = torch::tensor({1.0, 0.5}, torch::kFloat64);
    update.weights = weights;
    applyUpdate(update, UpdateTargets{{theta}, {phi}, l, {z}});
    CHECK(theta.grad().equal(torch::tensor({2.0, 1.0}, torch::kFloat64)));  // ∂z/∂θ = 2
    CHECK(phi.grad().item<double>() == 10.0);
  }
  SECTION("objective: back-propagated through everything") {
    clear();
    const std::vector<torch::Tensor> l = losses();
    StepOutput update;
    update.kind = StepOutput::Kind::kObjective;
    update.objective = 2.0 * l[0] + 3.0 * l[1];
    update.weights = weights;
    applyUpdate(update, UpdateTargets{{theta}, {phi}, l, {}});
    CHECK(theta.grad().equal(torch::tensor({11.0, 4.0}, torch::kFloat64)));  // 2a + 3b
    CHECK(phi.grad().item<double>() == 10.0);
  }
}
