// train.scheduler, train.early_stopping, train.clip and
// train.regularization: each schedule's rates against its formula worked by
// hand (PyTorch's StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR,
// LinearLR warm-up and ReduceLROnPlateau, stepped once per epoch), their
// YAML keys, and their effect on the real trainer.
#include <torch/torch.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "framework/checkpoint.h"
#include "framework/experiment.h"
#include "framework/schedule.h"
#include "framework/trainer.h"
#include "models/registry.h"
#include "tests/support/memory_log.h"

using namespace fulcrum;
using namespace fulcrum::testing;
using Catch::Detail::Approx;
using Catch::Matchers::Contains;

namespace {

const char* kFashion = "data: {kind: multi_fashion}\nstrategy: {name: fixed}\n";
const char* kToy = "data: {kind: gradnorm_toy}\nstrategy: {name: fixed}\n";

TrainSpec parseTrain(const std::string& train, const char* base = kToy) {
  return parseExperiment(std::string(base) + "train: " + train + "\n", "t.yaml").train;
}

ScheduleSpec parseSchedule(const std::string& scheduler, const char* base = kToy) {
  return parseTrain("{scheduler: " + scheduler + "}", base).scheduler;
}

/// The rates of epochs 0 .. count−1 (per-epoch schedules; lr0 = 1, 10 epochs).
std::vector<double> epochRates(const std::string& scheduler, int64_t count, int64_t epochs = 10) {
  const LearningRateSchedule schedule(parseSchedule(scheduler), 1.0, epochs, 5);
  std::vector<double> rates;
  for (int64_t e = 0; e < count; ++e) rates.push_back(schedule.rate(e, e * 5));
  return rates;
}

/// One task's validation values, {loss, mse, mae}, with `loss`.
std::vector<std::vector<double>> validation(double loss) { return {{loss, 0.0, 0.0}}; }

void requireRates(const std::vector<double>& actual, const std::vector<double>& expected) {
  REQUIRE(actual.size() == expected.size());
  for (std::size_t k = 0; k < actual.size(); ++k) {
    INFO("t = " << k);
    CHECK(actual[k] == Approx(expected[k]).margin(1e-15));
  }
}

}  // namespace

TEST_CASE("schedules: each kind's rates equal its formula", "[schedule]") {
  SECTION("constant (no train.scheduler)") { requireRates(epochRates("{}", 3), {1, 1, 1}); }
  SECTION("step: lr0·γ^⌊t/step_size⌋") {
    requireRates(epochRates("{kind: step, step_size: 2, gamma: 0.5}", 6),
                 {1, 1, 0.5, 0.5, 0.25, 0.25});
  }
  SECTION("multistep: lr0·γ^(milestones ≤ t), γ = 0.1 by default") {
    requireRates(epochRates("{kind: multistep, milestones: [2, 5]}", 7),
                 {1, 1, 0.1, 0.1, 0.1, 0.01, 0.01});
  }
  SECTION("exponential: lr0·γ^t") {
    requireRates(epochRates("{kind: exponential, gamma: 0.9}", 4), {1, 0.9, 0.81, 0.729});
  }
  SECTION("cosine: η_min + (lr0 − η_min)(1 + cos(πt/T))/2, T the whole training") {
    // T = 10 epochs: t = 5 is half way, 0.1 + 0.9·0.5; η_min from t = 10 on.
    const auto rates = epochRates("{kind: cosine, min_lr: 0.1}", 12);
    CHECK(rates[0] == Approx(1.0));
    CHECK(rates[5] == Approx(0.55));
    CHECK(rates[10] == Approx(0.1));
    CHECK(rates[11] == Approx(0.1));
    // t = 2.5/10 of the way: (1 + cos(π/4))/2 = 0.853553...
    CHECK(epochRates("{kind: cosine, t_max: 4}", 2)[1] ==
          Approx((1.0 + std::cos(3.14159265358979323846 / 4.0)) / 2.0));
  }
  SECTION("cosine with warm-up: a linear ramp from warmup_start, then T − warmup of cosine") {
    // warmup 2 from 0.5: 0.5, 0.75; the cosine starts at t = 2 over 8 epochs,
    // half way at t = 6.
    const auto rates = epochRates("{kind: cosine, warmup: 2, warmup_start: 0.5}", 11);
    CHECK(rates[0] == Approx(0.5));
    CHECK(rates[1] == Approx(0.75));
    CHECK(rates[2] == Approx(1.0));
    CHECK(rates[6] == Approx(0.5));
    CHECK(rates[10] == Approx(0.0).margin(1e-15));
  }
  SECTION("warm-up multiplies a step schedule, whose milestones count from t = 0") {
    // PyTorch's LinearLR default start factor 1/3 over 3 epochs: 1/3, 5/9, 7/9.
    requireRates(epochRates("{kind: step, step_size: 2, gamma: 0.5, warmup: 3}", 4),
                 {1.0 / 3.0, 5.0 / 9.0, 0.5 * 7.0 / 9.0, 0.5});
  }
  SECTION("interval: step counts global steps") {
    const LearningRateSchedule schedule(
        parseSchedule("{kind: step, step_size: 4, gamma: 0.1, interval: step}"), 2.0, 3, 5);
    CHECK(schedule.rate(0, 3) == Approx(2.0));
    CHECK(schedule.rate(0, 4) == Approx(0.2));
    CHECK(schedule.rate(1, 8) == Approx(0.02));
  }
}

TEST_CASE("schedules: reduce-on-plateau follows PyTorch's ReduceLROnPlateau", "[schedule]") {
  auto run = [](const std::string& scheduler, const std::vector<double>& losses) {
    LearningRateSchedule schedule(parseSchedule(scheduler), 1.0, 20, 5);
    std::vector<double> rates;  // the rate of the epoch after each value
    for (std::size_t e = 0; e < losses.size(); ++e) {
      schedule.endEpoch(static_cast<int64_t>(e), validation(losses[e]));
      rates.push_back(schedule.rate(static_cast<int64_t>(e) + 1, 0));
    }
    return rates;
  };
  SECTION("patience 1: the rate drops when two epochs in a row do not improve") {
    // best 1.0, 0.9; 0.95 and 0.97 are two bad epochs (> patience): 0.5;
    // 0.8 best; 0.85, 0.86 bad: 0.25.
    requireRates(run("{kind: plateau, metric: task0/loss, patience: 1, factor: 0.5}",
                     {1.0, 0.9, 0.95, 0.97, 0.8, 0.85, 0.86}),
                 {1, 1, 1, 0.5, 0.5, 0.5, 0.25});
  }
  SECTION("cooldown: the epochs after a reduction do not count") {
    const std::vector<double> worse = {1, 2, 3, 4, 5, 6};
    requireRates(run("{kind: plateau, metric: loss, patience: 1, factor: 0.5}", worse),
                 {1, 1, 0.5, 0.5, 0.25, 0.25});
    requireRates(run("{kind: plateau, metric: loss, patience: 1, factor: 0.5, cooldown: 1}", worse),
                 {1, 1, 0.5, 0.5, 0.5, 0.25});
  }
  SECTION("min_lr is the floor") {
    requireRates(
        run("{kind: plateau, metric: loss, patience: 0, factor: 0.1, min_lr: 0.05}", {1, 2, 3, 4}),
        {1, 0.1, 0.05, 0.05});
  }
  SECTION("threshold: relative by default, absolute with threshold_mode: abs") {
    // 0.99995 is not below 1·(1 − 1e-4); it is below 1 − 1e-5.
    requireRates(run("{kind: plateau, metric: loss, patience: 0}", {1.0, 0.99995}), {1, 0.1});
    requireRates(
        run("{kind: plateau, metric: loss, patience: 0, threshold: 1e-5, threshold_mode: abs}",
            {1.0, 0.99995}),
        {1, 1});
  }
  SECTION("a NaN value is no improvement") {
    requireRates(run("{kind: plateau, metric: loss, patience: 0}", {1.0, std::nan("")}), {1, 0.1});
  }
  SECTION("the state round-trips: restore() continues where state() was taken") {
    LearningRateSchedule a(parseSchedule("{kind: plateau, metric: loss, patience: 0}"), 1.0, 5, 5);
    a.endEpoch(0, validation(1.0));
    a.endEpoch(1, validation(2.0));
    LearningRateSchedule b(parseSchedule("{kind: plateau, metric: loss, patience: 0}"), 1.0, 5, 5);
    b.restore(a.state());
    CHECK(b.rate(2, 0) == Approx(0.1));
    b.endEpoch(2, validation(0.5));  // below the restored best of 1.0: no reduction
    CHECK(b.rate(3, 0) == Approx(0.1));
    b.restore(PlateauState{});  // a trial's start: the base rate
    CHECK(b.rate(0, 0) == 1.0);
  }
}

TEST_CASE("criteria: TASK/METRIC or loss, in the metric's direction", "[schedule]") {
  SECTION("accuracy is watched for a maximum, a loss for a minimum; mode overrides") {
    const ScheduleSpec accuracy =
        parseSchedule("{kind: plateau, metric: top_left/accuracy}", kFashion);
    CHECK(accuracy.criterion.task == 0);
    CHECK(accuracy.criterion.metric == 1);
    CHECK(accuracy.criterion.higherIsBetter);
    CHECK_FALSE(parseSchedule("{kind: plateau, metric: bottom_right/loss}", kFashion)
                    .criterion.higherIsBetter);
    CHECK_FALSE(parseSchedule("{kind: plateau, metric: top_left/accuracy, mode: min}", kFashion)
                    .criterion.higherIsBetter);
  }
  SECTION("loss: the mean of the tasks' validation losses, NaN tasks left out") {
    const ValidationCriterion loss = parseSchedule("{kind: plateau, metric: loss}").criterion;
    CHECK(loss.valueIn({{1.0, 9.0}, {3.0, 9.0}}) == Approx(2.0));
    CHECK(loss.valueIn({{1.0, 9.0}, {std::nan(""), 9.0}}) == Approx(1.0));
    CHECK(std::isnan(loss.valueIn({{std::nan("")}})));
  }
  SECTION("improves: relative and absolute thresholds in both directions") {
    CHECK(improves(0.5, std::nan(""), false, 0.1, true));
    CHECK_FALSE(improves(std::nan(""), 1.0, false, 0.0, true));
    CHECK(improves(0.89, 1.0, false, 0.1, true));
    CHECK_FALSE(improves(0.91, 1.0, false, 0.1, true));
    CHECK(improves(1.11, 1.0, true, 0.1, true));
    CHECK_FALSE(improves(1.05, 1.0, true, 0.1, false));
  }
}

TEST_CASE("early stopping: patience epochs without improvement end the trial", "[schedule]") {
  const EarlyStoppingSpec spec =
      parseTrain("{early_stopping: {metric: top_left/accuracy, patience: 2}}", kFashion)
          .earlyStopping;
  REQUIRE(spec.enabled);
  EarlyStopping stopping(spec);
  auto accuracy = [](double a) { return std::vector<std::vector<double>>{{0.0, a}, {0.0, 0.0}}; };
  CHECK(stopping.endEpoch(0, accuracy(0.5)).empty());
  CHECK(stopping.endEpoch(1, accuracy(0.6)).empty());
  CHECK(stopping.endEpoch(2, accuracy(0.6)).empty());  // equal: no improvement, 1 epoch
  CHECK(stopping.endEpoch(3, accuracy(0.55)) ==
        "val top_left/accuracy has not improved for 2 epoch(s) "
        "(train.early_stopping.patience 2); best 0.6 after epoch 2");
  CHECK(stopping.state().bestEpoch == 1);

  SECTION("min_epochs holds it back; min_delta sets what counts") {
    EarlyStopping held(
        parseTrain("{early_stopping: {metric: loss, patience: 1, min_epochs: 3}}").earlyStopping);
    CHECK(held.endEpoch(0, validation(1.0)).empty());
    CHECK(held.endEpoch(1, validation(2.0)).empty());  // would stop: epoch 2 < 3
    CHECK_FALSE(held.endEpoch(2, validation(2.0)).empty());
    EarlyStopping delta(
        parseTrain("{early_stopping: {metric: loss, patience: 1, min_delta: 0.1}}").earlyStopping);
    CHECK(delta.endEpoch(0, validation(1.0)).empty());
    CHECK_FALSE(delta.endEpoch(1, validation(0.95)).empty());  // 0.05 < min_delta
  }
  CHECK_FALSE(parseTrain("{epochs: 3}").earlyStopping.enabled);
}

TEST_CASE("schedules, clipping, regularisation, early stopping: the YAML keys",
          "[schedule][config]") {
  auto refused = [](const std::string& train, const std::string& message) {
    INFO(train);
    REQUIRE_THROWS_WITH(parseTrain(train), Contains(message));
  };
  refused("{scheduler: {kind: cyclic}}", "'cyclic'");
  refused("{scheduler: {kind: step}}", "train.scheduler.step_size");
  refused("{scheduler: {kind: exponential}}", "train.scheduler.gamma");
  refused("{scheduler: {kind: step, step_size: 2, milestones: [3]}}",
          "train.scheduler.milestones: is used only with 'kind: multistep' (kind is 'step')");
  refused("{scheduler: {kind: multistep, milestones: [5, 3]}}", "must increase strictly");
  refused("{scheduler: {kind: plateau}}", "train.scheduler.metric");
  refused("{scheduler: {kind: plateau, metric: accuracy}}",
          "'accuracy' is not a validation metric: write TASK/METRIC (e.g. task0/mae)");
  refused("{scheduler: {kind: plateau, metric: task7/loss}}",
          "no task 'task7' (tasks: task0, task1)");
  refused("{scheduler: {kind: plateau, metric: task0/accuracy}}",
          "task 'task0' (regression) has no metric 'accuracy' (it has loss, mse, mae)");
  refused("{scheduler: {kind: plateau, metric: loss, interval: step}}",
          "train.scheduler.interval: plateau watches a validation metric");
  refused("{scheduler: {kind: cosine, warmup_start: 0.1}}", "needs 'warmup'");
  refused("{clip: {norm: 1, value: 1}}", "train.clip.value: clip by 'norm' or by 'value'");
  refused("{clip: {norm: 0}}", "train.clip.norm");
  refused("{regularization: {shared: {l3: 1}}}", "train.regularization.shared.l3");
  refused("{regularization: {heads: {l1: 1}}}", "train.regularization.heads");
  refused("{early_stopping: {patience: 3}}", "train.early_stopping.metric");
  refused("{early_stopping: {metric: loss, patience: 0}}", "train.early_stopping.patience");
  refused("{save_model: sometimes}",
          "train.save_model: 'sometimes' is not one of: none, final, best, both");
  refused("{save_model: {which: best, metric: task9/loss}}",
          "train.save_model.metric: no task 'task9'");
  CHECK(parseTrain("{save_model: final}").saveModel.final);
  CHECK_FALSE(parseTrain("{save_model: final}").saveModel.best);
  // Without a metric of its own, best follows early stopping's criterion.
  const TrainSpec follows =
      parseTrain("{early_stopping: {metric: task1/mae, mode: max, patience: 2}, save_model: best}");
  CHECK(follows.saveModel.criterion.name == "task1/mae");
  CHECK(follows.saveModel.criterion.higherIsBetter);

  const TrainSpec train =
      parseTrain("{clip: {norm: 2.5}, regularization: {shared: {l2: 0.1}, tasks: {l1: 0.2}}}");
  CHECK(train.clip.maxNorm == 2.5);
  CHECK(train.regularization.sharedL2 == 0.1);
  CHECK(train.regularization.tasksL1 == 0.2);
  CHECK(train.regularization.sharedL1 == 0.0);
}

namespace {

ExperimentSpec tinyToy(const std::vector<std::string>& overrides) {
  return parseExperiment(R"(
seed: 3
data: {kind: gradnorm_toy, sigmas: [1, 3], input_dim: 12, output_dim: 4,
       train_size: 120, val_size: 30, test_size: 30}
model: {trunk: {kind: mlp, hidden: [16, 8]}}
train: {epochs: 3, batch_size: 40, log_gradients_every: 0, optimizer: {kind: sgd, lr: 0.1}}
strategy: {name: fixed}
)",
                         "toy.yaml", overrides);
}

struct Trained {
  MemoryLog log;
  TrialResult result;
  std::vector<torch::Tensor> before, after;  ///< the model's parameters
};

Trained trainToy(const ExperimentSpec& spec) {
  const MultiTaskData data = loadData(spec);
  auto model = makeModel(spec, data.inputShape);
  LambdaStrategy strategy;
  strategy.onStep = equalObjective;
  Trained trained;
  for (const auto& p : model->parameters()) trained.before.push_back(p.detach().clone());
  trained.result = train(spec, data, *model, strategy, trained.log, {});
  for (const auto& p : model->parameters()) trained.after.push_back(p.detach().clone());
  return trained;
}

/// The named step diagnostic of every step.
std::vector<double> curve(const MemoryLog& log, const std::string& name) {
  const auto& names = log.description.diagnostics;
  const auto at = std::find(names.begin(), names.end(), name) - names.begin();
  REQUIRE(static_cast<std::size_t>(at) < names.size());
  std::vector<double> values;
  for (const auto& step : log.steps) values.push_back(step.diagnostics.at(at));
  return values;
}

double changeNorm(const Trained& t) {
  double sum = 0.0;
  for (std::size_t k = 0; k < t.before.size(); ++k)
    sum += (t.after[k] - t.before[k]).square().sum().item<double>();
  return std::sqrt(sum);
}

}  // namespace

TEST_CASE("trainer: the scheduled rate is applied and logged per step", "[schedule][trainer]") {
  const Trained t = trainToy(tinyToy({"train.scheduler={kind: step, step_size: 1, gamma: 0.5}"}));
  REQUIRE(t.result.status == "completed");
  requireRates(curve(t.log, "lr"), {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025});
  // The rate the optimizer used: with SGD the first step moves θ by lr·g,
  // the same step at half the rate by half as much.
  const Trained once = trainToy(tinyToy({"train.epochs=1", "train.max_steps_per_epoch=1"}));
  const Trained half = trainToy(
      tinyToy({"train.epochs=1", "train.max_steps_per_epoch=1", "train.optimizer.lr=0.05"}));
  CHECK(changeNorm(half) == Approx(changeNorm(once) / 2.0).epsilon(1e-6));
}

TEST_CASE("trainer: clipping bounds the combined update, its fraction logged",
          "[schedule][trainer]") {
  SECTION("by norm: one SGD step moves the parameters by lr·max_norm") {
    const Trained t = trainToy(
        tinyToy({"train.epochs=1", "train.max_steps_per_epoch=1", "train.clip={norm: 0.05}"}));
    REQUIRE(t.result.status == "completed");
    const double norm = curve(t.log, "clip_norm")[0];
    CHECK(norm > 0.05);
    CHECK(curve(t.log, "clip_fraction")[0] == 1.0);
    // LibTorch scales by max_norm / (norm + 1e-6); float32 parameters hold
    // the change to about 1e-5 of it.
    CHECK(changeNorm(t) == Approx(0.1 * 0.05 * norm / (norm + 1e-6)).epsilon(1e-4));
    // A bound above the norm clips nothing: the unclipped step.
    const Trained loose = trainToy(
        tinyToy({"train.epochs=1", "train.max_steps_per_epoch=1", "train.clip={norm: 1e9}"}));
    const Trained plain = trainToy(tinyToy({"train.epochs=1", "train.max_steps_per_epoch=1"}));
    CHECK(curve(loose.log, "clip_fraction")[0] == 0.0);
    CHECK(changeNorm(loose) == Approx(changeNorm(plain)).epsilon(1e-12));
    CHECK(curve(loose.log, "clip_norm")[0] == Approx(changeNorm(plain) / 0.1).epsilon(1e-5));
  }
  SECTION("by value: no entry moves by more than lr·value; the share clipped is logged") {
    const Trained t = trainToy(
        tinyToy({"train.epochs=1", "train.max_steps_per_epoch=1", "train.clip={value: 0.01}"}));
    REQUIRE(t.result.status == "completed");
    double largest = 0.0;
    for (std::size_t k = 0; k < t.before.size(); ++k)
      largest = std::max(largest, (t.after[k] - t.before[k]).abs().max().item<double>());
    CHECK(largest == Approx(0.1 * 0.01).epsilon(1e-3));
    const double fraction = curve(t.log, "clip_fraction")[0];
    CHECK(fraction > 0.0);
    CHECK(fraction <= 1.0);
  }
}

TEST_CASE("trainer: regularisation adds λ₁ sign θ + 2λ₂θ and logs R(θ)", "[schedule][trainer]") {
  // One SGD step with and without train.regularization from the same
  // initialisation: the difference of the new parameters is −lr·∇R(θ0).
  const std::vector<std::string> once = {"train.epochs=1", "train.max_steps_per_epoch=1"};
  auto with = once;
  with.push_back("train.regularization={shared: {l2: 0.5}, tasks: {l1: 0.25}}");
  const ExperimentSpec spec = tinyToy(with);
  const Trained plain = trainToy(tinyToy(once)), regular = trainToy(spec);
  REQUIRE(regular.result.status == "completed");
  const MultiTaskData data = loadData(spec);
  auto model = makeModel(spec, data.inputShape);
  double expected = 0.0;
  std::size_t k = 0;
  for (const auto& item : model->named_parameters()) {
    INFO(item.key());
    REQUIRE(k < plain.before.size());
    const torch::Tensor theta = plain.before[k];
    REQUIRE(torch::equal(theta, regular.before[k]));
    bool shared = false;
    for (const auto& s : model->sharedParameters())
      shared = shared || s.unsafeGetTensorImpl() == item.value().unsafeGetTensorImpl();
    const torch::Tensor gradient = shared ? theta * (2 * 0.5) : theta.sign() * 0.25;
    expected += shared ? 0.5 * theta.square().sum().item<double>()
                       : 0.25 * theta.abs().sum().item<double>();
    CHECK(torch::allclose(regular.after[k] - plain.after[k], -0.1 * gradient, 1e-4, 1e-6));
    ++k;
  }
  CHECK(curve(regular.log, "regularization")[0] == Approx(expected).epsilon(1e-6));
}

TEST_CASE("trainer: early stopping ends a completed trial and says why", "[schedule][trainer]") {
  // The validation loss falls every epoch: watched for a maximum it never
  // improves after epoch 1, so patience 1 stops after epoch 2 of 5.
  struct StopLog : MemoryLog {
    int64_t stoppedAfter = 0;
    std::string reason;
    void stoppedEarly(int64_t trained, const std::string& why) override {
      stoppedAfter = trained;
      reason = why;
    }
  };
  const ExperimentSpec spec =
      tinyToy({"train.epochs=5", "train.early_stopping={metric: loss, mode: max, patience: 1}"});
  const MultiTaskData data = loadData(spec);
  LambdaStrategy strategy;
  strategy.onStep = equalObjective;
  StopLog log;
  const TrialResult result =
      train(spec, data, *makeModel(spec, data.inputShape), strategy, log, {});
  REQUIRE(result.status == "completed");
  CHECK(log.epochs.size() == 2);
  CHECK(log.stoppedAfter == 2);
  CHECK_THAT(log.reason,
             Contains("val loss has not improved for 1 epoch(s)") && Contains("after epoch 1"));
  CHECK(log.status == "completed");
  // A stop due after the last epoch anyway is no early stop.
  const ExperimentSpec two =
      tinyToy({"train.epochs=2", "train.early_stopping={metric: loss, mode: max, patience: 1}"});
  StopLog full;
  REQUIRE(train(two, data, *makeModel(two, data.inputShape), strategy, full, {}).status ==
          "completed");
  CHECK(full.epochs.size() == 2);
  CHECK(full.stoppedAfter == 0);
  CHECK(full.reason.empty());
}

TEST_CASE("train.save_model: the final and the best model, loaded back for evaluation",
          "[schedule][trainer][save_model]") {
  namespace fs = std::filesystem;
  const fs::path folder =
      fs::temp_directory_path() / ("fulcrum-save-" + std::to_string(::getpid()));
  fs::remove_all(folder);
  fs::create_directories(folder);
  // The validation loss falls every epoch: watched for a maximum (mode max)
  // the best is epoch 1's, while the final model is epoch 3's.
  const ExperimentSpec spec = tinyToy({"train.save_model={which: both, metric: loss, mode: max}"});
  REQUIRE(spec.train.saveModel.final);
  REQUIRE(spec.train.saveModel.best);
  const MultiTaskData data = loadData(spec);
  LambdaStrategy strategy;
  strategy.onStep = equalObjective;
  MemoryLog log;
  TrainHooks hooks;
  hooks.modelPath = (folder / "t").string();
  auto trained = makeModel(spec, data.inputShape);
  REQUIRE(train(spec, data, *trained, strategy, log, {}, hooks).status == "completed");
  REQUIRE(log.epochs.size() == 3);
  REQUIRE(log.epochs[1].values[1][0][0] < log.epochs[0].values[1][0][0]);

  auto fresh = makeModel(tinyToy({"seed=9"}), data.inputShape);  // other initial weights
  const SavedModel best = loadModel(hooks.modelPath + ".best.pt", *fresh);
  CHECK(best.which == "best");
  CHECK(best.epoch == 1);
  CHECK(best.criterion == "loss");
  CHECK(best.value == log.epochs[0].values[1][0][0] * 0.5 + log.epochs[0].values[1][1][0] * 0.5);
  // Its evaluation is the logged one of that epoch, bit for bit.
  CHECK(evaluateSplit(*fresh, data.val, spec.tasks, 1024, false) == log.epochs[0].values[1]);
  CHECK(evaluateSplit(*fresh, data.test, spec.tasks, 1024, false) == log.epochs[0].values[2]);
  const SavedModel final = loadModel(hooks.modelPath + ".final.pt", *fresh);
  CHECK(final.which == "final");
  CHECK(final.epoch == 3);
  CHECK(evaluateSplit(*fresh, data.test, spec.tasks, 1024, false) == log.epochs[2].values[2]);

  SECTION("a model of other widths is refused, naming the parameter and both shapes") {
    auto other = makeModel(tinyToy({"model.trunk.hidden=[16, 6]"}), data.inputShape);
    CHECK_THROWS_WITH(loadModel(hooks.modelPath + ".final.pt", *other),
                      Contains("does not fit the model of this experiment") &&
                          Contains("'trunk.2.weight' is [8, 16] float there, [6, 16] float here"));
  }
  SECTION("a flipped byte is refused before LibTorch reads it") {
    const std::string path = hooks.modelPath + ".final.pt";
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(200);
    char byte = 0;
    file.read(&byte, 1);
    file.seekp(200);
    byte = static_cast<char>(byte ^ 0x10);
    file.write(&byte, 1);
    file.close();
    CHECK_THROWS_WITH(loadModel(path, *fresh), Contains("damaged: CRC-32"));
  }
  SECTION("a missing file is named") {
    CHECK_THROWS_WITH(loadModel("/nonexistent/m.pt", *fresh),
                      Contains("cannot read model file '/nonexistent/m.pt'"));
  }
  fs::remove_all(folder);
}

TEST_CASE("cross_validation: fold f of k holds out the f-th k-th of the training rows",
          "[schedule][cross_validation]") {
  // 120 training rows in 3 folds of 40: each fold's validation split is
  // disjoint from its training split, and the folds' validation rows
  // together are every training row once.
  const MultiTaskData whole = loadData(tinyToy({}));
  std::vector<int> seen(static_cast<std::size_t>(whole.train.size()), 0);
  for (int64_t fold = 0; fold < 3; ++fold) {
    const ExperimentSpec spec =
        tinyToy({"cross_validation={folds: 3, fold: " + std::to_string(fold) + "}"});
    CHECK(spec.crossValidation.folds == 3);
    const MultiTaskData data = loadData(spec);
    REQUIRE(data.val.size() == 40);
    REQUIRE(data.train.size() == 80);
    CHECK(torch::equal(data.test.inputs, whole.test.inputs));  // the test split stays
    // Each held-out row is some training row of the whole split, not one of the fold's.
    for (int64_t r = 0; r < data.val.size(); ++r) {
      const torch::Tensor row = data.val.inputs[r];
      const torch::Tensor match = (whole.train.inputs == row).all(1).nonzero();
      REQUIRE(match.size(0) == 1);
      ++seen[static_cast<std::size_t>(match.item<int64_t>())];
      CHECK((data.train.inputs == row).all(1).any().item<bool>() == false);
      CHECK(torch::equal(data.val.targets[1][r], whole.train.targets[1][match.item<int64_t>()]));
    }
  }
  CHECK(std::all_of(seen.begin(), seen.end(), [](int count) { return count == 1; }));
  CHECK_THROWS_WITH(tinyToy({"cross_validation={folds: 3, fold: 3}"}),
                    Contains("cross_validation.fold"));
  CHECK_THROWS_WITH(tinyToy({"cross_validation={folds: 3}"}), Contains("cross_validation.fold"));
  CHECK_THROWS_WITH(loadData(tinyToy({"cross_validation={folds: 500, fold: 0}"})),
                    Contains("500 folds of a training split of 120 rows"));
}
