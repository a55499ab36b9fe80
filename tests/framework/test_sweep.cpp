// Tests of framework/sweep: expansion of sweep:, zip:, seeds: and --sweep
// into trials, stable trial ids, and located validation errors.
#include <catch2/catch.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/sweep.h"

using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using fulcrum::ConfigError;
using fulcrum::planSweepText;
using fulcrum::SweepOptions;
using fulcrum::TrialSpec;

namespace {

const std::string kBase =
    "name: s\n"
    "data: {kind: gradnorm_toy, train_size: 10}\n"
    "train: {epochs: 1, optimizer: {lr: 0.001}}\n"
    "strategy: {name: fixed}\n";

std::vector<TrialSpec> plan(const std::string& sweep, const SweepOptions& options = {}) {
  return planSweepText(kBase + sweep, "s.yaml", options);
}

template <typename Action>
ConfigError configErrorOf(Action action) {
  try {
    action();
  } catch (const ConfigError& error) {
    return error;
  }
  FAIL("expected a ConfigError");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("a file without a sweep is one trial of the base config", "[framework][sweep]") {
  const auto trials = plan("");
  REQUIRE(trials.size() == 1);
  CHECK(trials[0].overrides.empty());
  CHECK(trials[0].id.size() == 12);
  CHECK_THAT(trials[0].resultPath, Equals("out/s/s-fixed-seed0-" + trials[0].id + ".h5"));
}

TEST_CASE("sweep axes expand to their Cartesian product, first axis outermost",
          "[framework][sweep]") {
  const auto trials = plan(
      "sweep:\n  train.optimizer.lr: [0.1, 0.2, 0.3]\n  train.batch_size: {values: [8, 16]}\n");
  REQUIRE(trials.size() == 6);
  CHECK(trials[0].spec.train.optimizer.lr == 0.1);
  CHECK(trials[0].spec.train.batchSize == 8);
  CHECK(trials[1].spec.train.optimizer.lr == 0.1);
  CHECK(trials[1].spec.train.batchSize == 16);
  CHECK(trials[5].spec.train.optimizer.lr == 0.3);
  CHECK(trials[5].spec.train.batchSize == 16);
  std::set<std::string> ids;
  for (const auto& trial : trials) ids.insert(trial.id);
  CHECK(ids.size() == 6);
}

TEST_CASE("seeds repeat every point, innermost, and set seed", "[framework][sweep]") {
  const auto trials = plan("seed: 7\nsweep: {train.epochs: [1, 2]}\nseeds: [0, 1, 2]\n");
  REQUIRE(trials.size() == 6);
  CHECK(trials[0].spec.seed == 0);
  CHECK(trials[2].spec.seed == 2);
  CHECK(trials[3].spec.seed == 0);
  CHECK(trials[3].spec.train.epochs == 2);
  CHECK_THAT(trials[4].resultPath, Contains("-seed1-"));
}

TEST_CASE("zip groups vary their keys together", "[framework][sweep]") {
  SECTION("a mapping group") {
    const auto trials = plan(
        "sweep: {train.batch_size: [8, 16]}\nzip:\n  - {train.epochs: [1, 2, 3], data.train_size: "
        "[30, 20, 10]}\n");
    REQUIRE(trials.size() == 6);
    CHECK(trials[0].spec.train.epochs == 1);
    CHECK(trials[0].spec.data.gradNormToy.trainSize == 30);
    CHECK(trials[2].spec.train.epochs == 3);
    CHECK(trials[2].spec.data.gradNormToy.trainSize == 10);
  }
  SECTION("a group naming sweep axes") {
    const auto trials = plan(
        "sweep: {train.epochs: [1, 2], data.train_size: [20, 10]}\nzip: [[train.epochs, "
        "data.train_size]]\n");
    REQUIRE(trials.size() == 2);
    CHECK(trials[1].spec.train.epochs == 2);
    CHECK(trials[1].spec.data.gradNormToy.trainSize == 10);
  }
}

TEST_CASE("strategy entries may be whole mappings with options", "[framework][sweep]") {
  const auto trials =
      plan("sweep:\n  strategy: [{name: gradnorm, alpha: 0.5}, {name: dwa}]\nseeds: [0, 1]\n");
  REQUIRE(trials.size() == 4);
  CHECK(trials[0].spec.strategyName == "gradnorm");
  CHECK(trials[0].spec.strategy.getDouble("alpha", 0.0) == 0.5);
  CHECK(trials[3].spec.strategyName == "dwa");
  CHECK_THAT(trials[3].resultPath, Contains("s-dwa-seed1-"));
}

TEST_CASE("command-line sweep axes add or replace an axis, sets change the base",
          "[framework][sweep]") {
  SweepOptions options;
  options.sweeps = {"train.epochs=3,4", "strategy={name: gradnorm, alpha: 1},{name: dwa}"};
  options.sets = {"train.batch_size=4"};
  const auto trials = plan("sweep: {train.epochs: [1, 2, 5]}\n", options);
  REQUIRE(trials.size() == 4);
  CHECK(trials[0].spec.train.epochs == 3);
  CHECK(trials[3].spec.train.epochs == 4);
  CHECK(trials[3].spec.strategyName == "dwa");
  CHECK(trials[0].spec.train.batchSize == 4);
  CHECK_THAT(fulcrum::splitSweepValues("1e-3, {a: 1, b: [2, 3]},'x,y'"),
             Equals(std::vector<std::string>{"1e-3", "{a: 1, b: [2, 3]}", "'x,y'"}));
}

TEST_CASE("a trial id depends on the resolved config, not on key order", "[framework][sweep]") {
  const std::string a =
      "name: s\ndata: {kind: gradnorm_toy, train_size: 10}\nstrategy: {name: fixed}\n"
      "train: {epochs: 1, optimizer: {lr: 0.001, kind: adam}}\n";
  const std::string b =
      "strategy: {name: fixed}\ntrain: {optimizer: {kind: adam, lr: 1e-3}, epochs: 1}\n"
      "data: {train_size: 10, kind: gradnorm_toy}\nname: s\n";
  const std::string idA = planSweepText(a, "a.yaml")[0].id;
  CHECK(idA == planSweepText(b, "b.yaml")[0].id);
  CHECK(idA != planSweepText(a, "a.yaml", {{"train.epochs=2"}, {}})[0].id);
  // train.threads changes speed only, so the sweep runner may set it per child.
  CHECK(idA == planSweepText(a, "a.yaml", {{"train.threads=2"}, {}})[0].id);
  CHECK(idA == planSweepText(a, "a.yaml", {{"output=elsewhere"}, {}})[0].id);
  // A swept value and the same value written in the file give the same trial.
  CHECK(planSweepText(a + "sweep: {train.epochs: [2]}\n", "a.yaml")[0].id ==
        planSweepText(a, "a.yaml", {{"train.epochs=2"}, {}})[0].id);
  CHECK(fulcrum::fnv1a64("") == 0xcbf29ce484222325ULL);
  CHECK(fulcrum::fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
}

TEST_CASE("sweep errors name file, line, column and key path", "[framework][sweep]") {
  // kBase has 4 lines, so the sweep block starts on line 5.
  CHECK_THAT(configErrorOf([] { plan("sweep:\n  train.epochs: 3\n"); }).what(),
             Equals("s.yaml:6:17: sweep.train.epochs: expected a list of values (e.g. [1, 2]) or "
                    "{values: [...]}, got '3'"));
  CHECK_THAT(configErrorOf([] { plan("sweep:\n  train.epochs: []\n"); }).what(),
             Equals("s.yaml:6:17: sweep.train.epochs: the list of values is empty: an axis needs "
                    "at least one "
                    "value"));
  CHECK_THAT(configErrorOf([] { plan("sweep:\n  train.epochs: {value: [1]}\n"); }).what(),
             Contains("s.yaml:6:25: sweep.train.epochs.value: unknown key 'value'"));
  CHECK_THAT(configErrorOf([] {
               plan("zip:\n  - {train.epochs: [1, 2], train.batch_size: [1, 2, 3]}\n");
             }).what(),
             Equals("s.yaml:6:5: zip[0]: keys that vary together need lists of equal length: "
                    "'train.epochs' has 2 "
                    "values, 'train.batch_size' has 3"));
  CHECK_THAT(configErrorOf([] { plan("seeds: [0, -1]\n"); }).what(),
             Contains("s.yaml:5:12: seeds[1]: -1 is out of range"));
  CHECK_THAT(configErrorOf([] { plan("sweep: [1, 2]\n"); }).what(),
             Contains("s.yaml:5:8: sweep: expected a mapping"));
}

TEST_CASE("every trial is validated, errors placed at the swept value", "[framework][sweep]") {
  CHECK_THAT(configErrorOf([] { plan("sweep:\n  train.epochs: [1, 0]\n"); }).what(),
             Equals("s.yaml:6:21: train.epochs: 0 is out of range: must be in [1, 1000000]"));
  CHECK_THAT(configErrorOf([] { plan("sweep:\n  train.epocs: [1]\n"); }).what(),
             Contains("s.yaml:6:17: train.epocs: unknown key 'epocs' (did you mean 'epochs'?)"));
  CHECK_THAT(configErrorOf([] {
               plan("", {{}, {"train.epochs=2,x"}});
             }).what(),
             Equals("--sweep train.epochs=2,x: train.epochs: expected an integer, got 'x'"));
  CHECK_THAT(configErrorOf([] { plan("sweep: {train.epochs: [1, 1]}\n"); }).what(),
             Contains("s.yaml: sweep: trials 0 and 1 have the same configuration"));
}

TEST_CASE("run ignores the sweep block: parseExperiment reads the base", "[framework][sweep]") {
  const auto spec = fulcrum::parseExperiment(
      kBase + "sweep: {train.epochs: [5]}\nzip: []\nseeds: [3]\n", "s.yaml");
  CHECK(spec.train.epochs == 1);
  CHECK(spec.seed == 0);
  CHECK_FALSE(spec.root["sweep"].IsDefined());
}

TEST_CASE("sweep: cross_validation: k runs every fold as a trial", "[sweep][cross_validation]") {
  const std::vector<TrialSpec> trials =
      plan("sweep: {cross_validation: 3, train.optimizer.lr: [0.001, 0.01]}\n");
  REQUIRE(trials.size() == 6);
  std::set<std::pair<int64_t, double>> points;
  for (const TrialSpec& trial : trials) {
    CHECK(trial.spec.crossValidation.folds == 3);
    points.insert({trial.spec.crossValidation.fold, trial.spec.train.optimizer.lr});
  }
  CHECK(points.size() == 6);
  const std::vector<TrialSpec> seeded = plan("sweep: {cross_validation: {folds: 2, seed: 7}}\n");
  REQUIRE(seeded.size() == 2);
  CHECK(seeded[1].spec.crossValidation.fold == 1);
  CHECK(seeded[1].spec.crossValidation.seed == 7);
  REQUIRE_THROWS_WITH(plan("sweep: {cross_validation: 1}\n"), Contains("sweep.cross_validation"));
}
