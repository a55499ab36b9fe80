// Tests of framework/config_node and framework/experiment: typed getters and
// their bounds, error locations, unknown and duplicate keys, defaults of an
// experiment file, and `--set` overrides. Messages are checked by their text.
#include <yaml-cpp/yaml.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/experiment.h"
#include "models/registry.h"

using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using fulcrum::ConfigError;
using fulcrum::ConfigNode;
using fulcrum::ExperimentSpec;
using fulcrum::parseExperiment;

namespace {

/// The root mapping of `text`, as if read from "f.yaml".
ConfigNode root(const std::string& text) { return ConfigNode(YAML::Load(text), "f.yaml", ""); }

/// The ConfigError `action` throws; fails the test if it throws nothing else.
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

const std::string kMinimal = "{data: {kind: gradnorm_toy}, strategy: {name: fixed}}";

}  // namespace

// ---------------------------------------------------------------- ConfigError

TEST_CASE("config: ConfigError formats file, 1-based line and column, and key path", "[config]") {
  const ConfigError located("a.yaml", 3, 7, "train.epochs", "bad");
  CHECK_THAT(located.what(), Equals("a.yaml:3:7: train.epochs: bad"));
  CHECK(located.file() == "a.yaml");
  CHECK(located.line() == 3);
  CHECK(located.column() == 7);
  CHECK(located.keyPath() == "train.epochs");
  CHECK(located.message() == "bad");
  // Line 0: no location; an empty key path: no "key: " part.
  CHECK_THAT(ConfigError("--set x=1", 0, 0, "x", "bad").what(), Equals("--set x=1: x: bad"));
  CHECK_THAT(ConfigError("a.yaml", 0, 0, "", "empty").what(), Equals("a.yaml: empty"));
}

// ---------------------------------------------------------------- getters

TEST_CASE("config: getInt returns the value, the fallback when absent or null", "[config]") {
  const ConfigNode node = root("n: 7\nnothing: ~\n");
  CHECK(node.getInt("n", 1) == 7);
  CHECK(node.getInt("absent", 42) == 42);
  CHECK(node.getInt("nothing", 5) == 5);
  CHECK(node.has("n"));
  CHECK_FALSE(node.has("nothing"));
  CHECK_FALSE(node.has("absent"));
  CHECK(node.getInt("n", 1, 7, 7) == 7);  // bounds are inclusive
}

TEST_CASE("config: integer bounds and types are checked with exact messages", "[config]") {
  const ConfigNode node = root(
      "n: 0\nneg: -3\nbig: 11\ns: abc\nf: 2.5\nl: [1]\nexp: 1e12\nsmall: 1e3\n"
      "huge: 99999999999999999999\n");
  REQUIRE_THROWS_WITH(node.getInt("n", 5, 1, 10),
                      Equals("f.yaml:1:4: n: 0 is out of range: must be in [1, 10]"));
  REQUIRE_THROWS_WITH(node.getInt("neg", 5, 0),
                      Equals("f.yaml:2:6: neg: -3 is out of range: must be >= 0"));
  REQUIRE_THROWS_WITH(node.getInt("big", 5, INT64_MIN, 10),
                      Equals("f.yaml:3:6: big: 11 is out of range: must be <= 10"));
  REQUIRE_THROWS_WITH(node.getInt("s", 5), Equals("f.yaml:4:4: s: expected an integer, got 'abc'"));
  REQUIRE_THROWS_WITH(node.getInt("f", 5), Equals("f.yaml:5:4: f: expected an integer, got '2.5'"));
  REQUIRE_THROWS_WITH(node.getInt("l", 5),
                      Equals("f.yaml:6:4: l: expected an integer, got a list"));
  // Whole numbers long long cannot read are judged against the bounds.
  REQUIRE_THROWS_WITH(node.getInt("exp", 5, 1, 100'000'000),
                      Equals("f.yaml:7:6: exp: '1e12' is out of range: must be in [1, 100000000]"));
  REQUIRE_THROWS_WITH(node.getInt("small", 5, 1, 100'000'000),
                      Equals("f.yaml:8:8: small: expected an integer in plain digits (e.g. 1000), "
                             "got '1e3'"));
  REQUIRE_THROWS_WITH(node.getInt("huge", 5),
                      Equals("f.yaml:9:7: huge: '99999999999999999999' is out of range: must be "
                             "in [-9223372036854775808, 9223372036854775807]"));
  REQUIRE_THROWS_WITH(node.requireInt("absent"),
                      Equals("f.yaml:1:1: absent: required integer is missing"));
}

TEST_CASE("config: numbers are finite and within their bounds", "[config]") {
  const ConfigNode node = root("x: 0.25\ns: abc\nnan: .nan\ninf: -.inf\nhigh: 2.5\nm: {a: 1}\n");
  CHECK(node.getDouble("x", 1.0) == 0.25);
  CHECK(node.getDouble("absent", 1.5) == 1.5);
  REQUIRE_THROWS_WITH(node.getDouble("s", 0.0),
                      Equals("f.yaml:2:4: s: expected a number, got 'abc'"));
  REQUIRE_THROWS_WITH(node.getDouble("nan", 0.0),
                      Equals("f.yaml:3:6: nan: expected a finite number, got '.nan'"));
  REQUIRE_THROWS_WITH(node.getDouble("inf", 0.0),
                      Equals("f.yaml:4:6: inf: expected a finite number, got '-.inf'"));
  REQUIRE_THROWS_WITH(node.getDouble("high", 0.0, 0.0, 1.0),
                      Equals("f.yaml:5:7: high: 2.5 is out of range: must be in [0, 1]"));
  REQUIRE_THROWS_WITH(node.getDouble("high", 0.0, 3.0),
                      Equals("f.yaml:5:7: high: 2.5 is out of range: must be >= 3"));
  REQUIRE_THROWS_WITH(node.getDouble("high", 0.0, -1e300, 1e-3),
                      Equals("f.yaml:5:7: high: 2.5 is out of range: must be <= 0.001"));
  REQUIRE_THROWS_WITH(node.getDouble("m", 0.0),
                      Equals("f.yaml:6:4: m: expected a number, got a mapping"));
  REQUIRE_THROWS_WITH(node.requireDouble("absent"),
                      Equals("f.yaml:1:1: absent: required number is missing"));
}

TEST_CASE("config: booleans and strings", "[config]") {
  const ConfigNode node = root("yes: true\nno: false\nmaybe: perhaps\nopt: adma\nmap: {a: 1}\n");
  CHECK(node.getBool("yes", false));
  CHECK_FALSE(node.getBool("no", true));
  CHECK(node.getBool("absent", true));
  REQUIRE_THROWS_WITH(node.getBool("maybe", false),
                      Equals("f.yaml:3:8: maybe: expected true or false, got 'perhaps'"));
  CHECK(node.getString("absent", "dflt") == "dflt");
  CHECK(node.getString("opt", "") == "adma");
  REQUIRE_THROWS_WITH(
      node.getString("opt", "", {"adam", "sgd"}),
      Equals("f.yaml:4:6: opt: 'adma' is not one of: adam, sgd (did you mean 'adam'?)"));
  REQUIRE_THROWS_WITH(node.getString("opt", "", {"lbfgs", "rmsprop"}),
                      Equals("f.yaml:4:6: opt: 'adma' is not one of: lbfgs, rmsprop"));
  REQUIRE_THROWS_WITH(node.getString("map", ""),
                      Equals("f.yaml:5:6: map: expected a string, got a mapping"));
  REQUIRE_THROWS_WITH(node.requireString("absent"),
                      Equals("f.yaml:1:1: absent: required value is missing"));
}

TEST_CASE("config: lists are checked item by item, with the item's index", "[config]") {
  const ConfigNode node =
      root("w: [0.5, 1.5]\nbad: [1, x]\nwide: [1, 5]\nscalar: 3\nh: [4, 8]\nhf: [1, 2.5]\n");
  CHECK(node.getDoubleList("w", {}) == std::vector<double>{0.5, 1.5});
  CHECK(node.getDoubleList("absent", {9.0}) == std::vector<double>{9.0});
  CHECK(node.getIntList("h", {}) == std::vector<int64_t>{4, 8});
  REQUIRE_THROWS_WITH(node.getDoubleList("bad", {}),
                      Equals("f.yaml:2:10: bad[1]: expected a finite number, got 'x'"));
  REQUIRE_THROWS_WITH(node.getDoubleList("wide", {}, 0.0, 2.0),
                      Equals("f.yaml:3:11: wide[1]: 5 is out of range: must be in [0, 2]"));
  REQUIRE_THROWS_WITH(node.getDoubleList("scalar", {}),
                      Equals("f.yaml:4:9: scalar: expected a list, got '3'"));
  REQUIRE_THROWS_WITH(node.getIntList("hf", {}),
                      Equals("f.yaml:6:9: hf[1]: expected an integer, got '2.5'"));
  REQUIRE_THROWS_WITH(node.getIntList("h", {}, 5, 10),
                      Equals("f.yaml:5:5: h[0]: 4 is out of range: must be in [5, 10]"));
}

TEST_CASE("config: child and children carry the key path", "[config]") {
  const ConfigNode node = root("a:\n  b:\n    c: 1\nlist:\n  - {x: 1}\n  - {x: bad}\nn: 3\n");
  const ConfigNode b = node.child("a").child("b");
  CHECK(b.keyPath() == "a.b");
  CHECK(b.pathOf("c") == "a.b.c");
  CHECK(b.getInt("c", 0) == 1);
  const ConfigNode absent = node.child("nothing");
  CHECK(absent.keys().empty());
  CHECK(absent.keyPath() == "nothing");
  const std::vector<ConfigNode> items = node.children("list");
  REQUIRE(items.size() == 2);
  CHECK(items[1].keyPath() == "list[1]");
  REQUIRE_THROWS_WITH(items[1].getInt("x", 0),
                      Equals("f.yaml:6:9: list[1].x: expected an integer, got 'bad'"));
  REQUIRE_THROWS_WITH(node.child("n"),
                      Equals("f.yaml:7:4: n: expected a mapping of keys to values, got '3'"));
  REQUIRE_THROWS_WITH(node.children("a"), Equals("f.yaml:2:3: a: expected a list, got a mapping"));
  CHECK(node.children("absent").empty());
}

TEST_CASE("config: keys come in file order; fail() locates a key or the mapping", "[config]") {
  const ConfigNode node = root("zeta: 1\nalpha: 2\nmid: 3\n");
  CHECK(node.keys() == std::vector<std::string>{"zeta", "alpha", "mid"});
  REQUIRE_THROWS_WITH(node.fail("alpha", "no good"), Equals("f.yaml:2:8: alpha: no good"));
  REQUIRE_THROWS_WITH(node.fail("absent", "is needed"), Equals("f.yaml:1:1: absent: is needed"));
  REQUIRE_THROWS_WITH(node.fail("", "whole"), Equals("f.yaml:1:1: whole"));
}

// ---------------------------------------------------------------- unknown and duplicate keys

TEST_CASE("config: finish() rejects unknown keys, suggesting a close one", "[config]") {
  const ConfigNode node = root("epochs: 3\nepocs: 4\n");
  node.getInt("epochs", 1);
  REQUIRE_THROWS_WITH(node.finish(),
                      Equals("f.yaml:2:1: epocs: unknown key 'epocs' (did you mean 'epochs'?)"));

  const ConfigNode far = root("kind: adam\nlearning_rate: 0.1\n");
  far.getString("kind", "");
  far.getDouble("lr", 0.0);
  REQUIRE_THROWS_WITH(far.finish({"weight_decay"}),
                      Equals("f.yaml:2:1: learning_rate: unknown key 'learning_rate'; valid keys "
                             "here: kind, lr, weight_decay"));
}

TEST_CASE("config: finish() accepts keys read, keys in alsoValid, and reads through copies",
          "[config]") {
  const ConfigNode node = root("name: x\nvalue: 1\n");
  const ConfigNode copy = node;  // copies share the record of keys read
  copy.getInt("value", 0);
  CHECK_NOTHROW(node.finish({"name"}));
  REQUIRE_THROWS_WITH(root("name: x\n").finish(), Contains("unknown key 'name'"));
  // A key both read and in alsoValid is listed once.
  const ConfigNode options = root("name: dwa\nalpha: 1\n");
  options.requireString("name");
  options.getDouble("temperature", 1.0);
  REQUIRE_THROWS_WITH(
      options.finish({"name"}),
      Equals("f.yaml:2:1: alpha: unknown key 'alpha'; valid keys here: name, temperature"));
}

TEST_CASE("config: duplicate keys are rejected at the second occurrence", "[config]") {
  REQUIRE_THROWS_WITH(root("a: 1\nb: 2\na: 3\n"), Equals("f.yaml:3:1: a: duplicate key"));
  const ConfigNode node = root("train:\n  epochs: 1\n  epochs: 2\n");
  REQUIRE_THROWS_WITH(node.child("train"), Equals("f.yaml:3:3: train.epochs: duplicate key"));
  REQUIRE_THROWS_WITH(root("{[a, b]: 1}"), Contains("keys must be plain names"));
}

// ---------------------------------------------------------------- editDistance, closestMatch

TEST_CASE("config: editDistance is the Levenshtein distance", "[config]") {
  CHECK(fulcrum::editDistance("kitten", "sitting") == 3);
  CHECK(fulcrum::editDistance("", "abc") == 3);
  CHECK(fulcrum::editDistance("abc", "") == 3);
  CHECK(fulcrum::editDistance("same", "same") == 0);
  CHECK(fulcrum::editDistance("epocs", "epochs") == 1);
  CHECK(fulcrum::editDistance("trian", "train") == 2);  // a swap is two edits
  CHECK(fulcrum::editDistance("flaw", "lawn") == fulcrum::editDistance("lawn", "flaw"));
}

TEST_CASE("config: closestMatch suggests only plausible typos", "[config]") {
  const std::vector<std::string> keys = {"epochs", "batch_size", "optimizer", "threads"};
  CHECK(fulcrum::closestMatch("epocs", keys) == "epochs");
  CHECK(fulcrum::closestMatch("batchsize", keys) == "batch_size");
  CHECK(fulcrum::closestMatch("optimiser", keys) == "optimizer");
  CHECK(fulcrum::closestMatch("learning_rate", keys).empty());
  CHECK(fulcrum::closestMatch("xyz", keys).empty());
  CHECK(fulcrum::closestMatch("epochs", {}).empty());
  CHECK(fulcrum::closestMatch("gradnrom", {"fixed", "uncertainty", "gradnorm", "dwa"}) ==
        "gradnorm");
}

// ---------------------------------------------------------------- parseExperiment

TEST_CASE("config: a minimal experiment gets every default", "[config]") {
  const ExperimentSpec spec = parseExperiment(kMinimal, "dir/min.yaml");
  CHECK(spec.file == "dir/min.yaml");
  CHECK(spec.name == "min");
  CHECK(spec.seed == 0);
  CHECK(spec.output == "out/min");
  CHECK(spec.data.kind == "gradnorm_toy");
  CHECK(spec.data.gradNormToy.tasks == 2);
  CHECK(spec.data.gradNormToy.sigmas.empty());
  CHECK(spec.data.gradNormToy.inputDim == 250);
  CHECK(spec.data.gradNormToy.outputDim == 100);
  CHECK(spec.data.gradNormToy.trainSize == 9000);
  // hps, mlp trunk 250 → 100 ×4, linear heads 100 → 100: 25100 + 3·10100 + 2·10100.
  CHECK(planModel(spec).architecture == "hps");
  CHECK(planModel(spec).size.parameters == 75600);
  REQUIRE(spec.tasks.size() == 2);
  CHECK(spec.tasks[0].name == "task0");
  CHECK(spec.tasks[1].name == "task1");
  CHECK(spec.tasks[0].kind == fulcrum::TaskKind::kRegression);
  CHECK(spec.tasks[1].outputs == 100);
  CHECK(spec.train.epochs == 10);
  CHECK(spec.train.batchSize == 256);
  CHECK(spec.train.evalBatchSize == 1024);
  CHECK(spec.train.maxStepsPerEpoch == 0);
  CHECK(spec.train.threads == 0);
  CHECK(spec.train.logGradientsEvery == 25);
  CHECK(spec.train.optimizer.kind == "adam");
  CHECK(spec.train.optimizer.lr == 1e-3);
  CHECK(spec.train.optimizer.weightDecay == 0.0);
  CHECK(spec.strategyName == "fixed");
  CHECK(spec.strategy.keyPath() == "strategy");
}

TEST_CASE("config: multi_fashion defaults to a lenet trunk and its two tasks", "[config]") {
  const ExperimentSpec spec = parseExperiment(
      "{data: {kind: multi_fashion}, strategy: {name: dwa}}", "dir/my_experiment.yaml");
  CHECK(spec.name == "my_experiment");  // the file's stem
  // lenet (810 + 10 + 5000 + 20 + 25000 + 50) and two linear heads 50 → 10.
  CHECK(planModel(spec).size.parameters == 30890 + 2 * 510);
  CHECK(spec.data.multiFashion.directory == "/usr/share/datasets/fashion-mnist");
  CHECK(spec.data.multiFashion.trainSize == 54000);
  REQUIRE(spec.tasks.size() == 2);
  CHECK(spec.tasks[0].name == "top_left");
  CHECK(spec.tasks[1].name == "bottom_right");
  CHECK(spec.tasks[1].kind == fulcrum::TaskKind::kClassification);
  CHECK(spec.tasks[1].outputs == 10);
}

TEST_CASE("config: values given in the file replace the defaults", "[config]") {
  const ExperimentSpec spec = parseExperiment(
      "name: toy\nseed: 7\ndata: {kind: gradnorm_toy, sigmas: [1, 10, 100]}\n"
      "model: {trunk: {kind: mlp, hidden: [32]}, head: {kind: mlp}}\n"
      "tasks: [{name: a}, {name: b}, {name: c}]\n"
      "train: {epochs: 2, optimizer: {kind: sgd, lr: 0.1, momentum: 0.9}}\n"
      "strategy: {name: gradnorm, alpha: 1.5}\n",
      "x.yaml");
  CHECK(spec.name == "toy");
  CHECK(spec.seed == 7);
  CHECK(spec.data.gradNormToy.tasks == 3);  // from the number of sigmas
  // Trunk 250 → 32 (8032); three mlp heads 32 → 50 → 100 (1650 + 5100 each).
  CHECK(planModel(spec).size.parameters == 8032 + 3 * 6750);
  REQUIRE(spec.tasks.size() == 3);
  CHECK(spec.tasks[2].name == "c");
  CHECK(spec.train.epochs == 2);
  CHECK(spec.train.optimizer.momentum == 0.9);
  CHECK(spec.strategyName == "gradnorm");
  CHECK(spec.strategy.getDouble("alpha", 0.0) == 1.5);
}

TEST_CASE("config: an error deep in a file names its 1-based line and column", "[config]") {
  const std::string text =
      "# a comment line\n"
      "data:\n"
      "  kind: gradnorm_toy\n"
      "train:\n"
      "  epochs: 3\n"
      "  optimizer:\n"
      "    kind: adam\n"
      "    lr: -0.5\n"
      "strategy: {name: fixed}\n";
  const ConfigError error = configErrorOf([&] { parseExperiment(text, "deep.yaml"); });
  CHECK(error.line() == 8);
  CHECK(error.column() == 9);
  CHECK(error.keyPath() == "train.optimizer.lr");
  CHECK_THAT(
      error.what(),
      Equals("deep.yaml:8:9: train.optimizer.lr: -0.5 is out of range: must be in [1e-12, 1000]"));
}

TEST_CASE("config: a typo key in a file is located and gets a suggestion", "[config]") {
  const std::string text =
      "data: {kind: gradnorm_toy}\ntrain:\n  batch_size: 8\n  epocs: 3\nstrategy: {name: fixed}\n";
  REQUIRE_THROWS_WITH(
      parseExperiment(text, "typo.yaml"),
      Equals("typo.yaml:4:3: train.epocs: unknown key 'epocs' (did you mean 'epochs'?)"));
  REQUIRE_THROWS_WITH(
      parseExperiment("data: {kind: gradnorm_toy}\nstrategy: {name: fixed}\nsede: 3\n", "t.yaml"),
      Equals("t.yaml:3:1: sede: unknown key 'sede' (did you mean 'seed'?)"));
}

TEST_CASE("config: duplicate keys in an experiment file are rejected", "[config]") {
  REQUIRE_THROWS_WITH(
      parseExperiment(
          "data: {kind: gradnorm_toy}\nstrategy: {name: fixed}\ndata: {kind: multi_fashion}\n",
          "d.yaml"),
      Equals("d.yaml:3:1: data: duplicate key"));
  REQUIRE_THROWS_WITH(
      parseExperiment("data: {kind: gradnorm_toy}\nstrategy: {name: fixed, name: dwa}\n", "d.yaml"),
      Equals("d.yaml:2:25: strategy.name: duplicate key"));
}

TEST_CASE("config: whole-file problems", "[config]") {
  REQUIRE_THROWS_WITH(parseExperiment("", "e.yaml"),
                      Equals("e.yaml: the experiment file is empty"));
  REQUIRE_THROWS_WITH(parseExperiment("# only a comment\n", "e.yaml"),
                      Equals("e.yaml: the experiment file is empty"));
  REQUIRE_THROWS_WITH(parseExperiment("- a\n- b\n", "l.yaml"),
                      Contains("l.yaml:1:1: an experiment file must be a mapping of keys"));
  REQUIRE_THROWS_WITH(parseExperiment("data: {kind: [gradnorm_toy}\n", "s.yaml"),
                      Contains("s.yaml:1:") && Contains("YAML syntax error"));
  REQUIRE_THROWS_WITH(
      parseExperiment("data:\n  kind: gradnorm_toy\ntrain:\n\tepochs: 3\n", "tab.yaml"),
      Equals("tab.yaml:4:1: YAML syntax error: tab in indentation (YAML indents "
             "with spaces only)"));
  REQUIRE_THROWS_WITH(
      parseExperiment("data: {kind: gradnorm_toy}\nstrategy:\n  \tname: fixed\n", "tab.yaml"),
      Equals("tab.yaml:3:3: YAML syntax error: tab in indentation (YAML indents "
             "with spaces only)"));
  REQUIRE_THROWS_WITH(parseExperiment("data: {kind: gradnorm_toy}\n", "m.yaml"),
                      Equals("m.yaml:1:1: missing key 'strategy' (e.g. strategy: {name: fixed})"));
  REQUIRE_THROWS_WITH(fulcrum::loadExperiment("/nonexistent/dir/x.yaml"),
                      Equals("/nonexistent/dir/x.yaml: file not found"));
}

TEST_CASE("config: experiment-level checks name the offending key", "[config]") {
  REQUIRE_THROWS_WITH(
      planModel(parseExperiment(
          "data: {kind: gradnorm_toy}\nmodel: {trunk: {kind: lenet}}\nstrategy: {name: fixed}\n",
          "t.yaml")),
      Equals("t.yaml:2:23: model.trunk.kind: the lenet trunk takes C × H × W images with H and "
             "W at least 20 (e.g. multi_fashion's 1×36×36), not inputs of shape [250]; use "
             "kind: mlp"));
  REQUIRE_THROWS_WITH(
      parseExperiment(
          "data: {kind: gradnorm_toy}\ntasks: [{name: a}, {name: a}]\nstrategy: {name: fixed}\n",
          "t.yaml"),
      Equals("t.yaml:2:27: tasks[1].name: duplicate task name 'a'"));
  REQUIRE_THROWS_WITH(
      parseExperiment("data: {kind: gradnorm_toy}\ntasks: [{name: a}]\nstrategy: {name: fixed}\n",
                      "t.yaml"),
      Equals("t.yaml:2:8: tasks: data kind 'gradnorm_toy' defines 2 tasks (task0, "
             "task1), the list has 1"));
  REQUIRE_THROWS_WITH(parseExperiment("data: {kind: gradnorm_toy}\ntrain: {optimizer: {momentum: "
                                      "0.9}}\nstrategy: {name: fixed}\n",
                                      "t.yaml"),
                      Equals("t.yaml:2:31: train.optimizer.momentum: is used only with 'kind: sgd' "
                             "or 'kind: rmsprop' (kind is 'adam')"));
}

// ---------------------------------------------------------------- --set overrides

TEST_CASE("config: --set replaces a value from the file", "[config]") {
  const std::string text =
      "data: {kind: gradnorm_toy}\ntrain: {epochs: 3}\nstrategy: {name: fixed}\n";
  const ExperimentSpec spec =
      parseExperiment(text, "o.yaml", {"train.epochs=7", "strategy.name=dwa"});
  CHECK(spec.train.epochs == 7);
  CHECK(spec.strategyName == "dwa");
  CHECK_THAT(spec.resolvedYaml(), Contains("epochs: 7"));
  // The last of two overrides of one key wins.
  CHECK(parseExperiment(text, "o.yaml", {"train.epochs=4", "train.epochs=5"}).train.epochs == 5);
}

TEST_CASE("config: --set creates missing nested keys", "[config]") {
  const ExperimentSpec spec =
      parseExperiment(kMinimal, "o.yaml", {"train.optimizer.lr=0.01", "data.sigmas=[1, 2, 3]"});
  CHECK(spec.train.optimizer.lr == 0.01);
  CHECK(spec.data.gradNormToy.tasks == 3);
  // An empty file is fine when overrides supply everything.
  const ExperimentSpec fromNothing =
      parseExperiment("", "e.yaml", {"data.kind=gradnorm_toy", "strategy.name=fixed"});
  CHECK(fromNothing.strategyName == "fixed");
  CHECK(fromNothing.tasks.size() == 2);
}

TEST_CASE("config: an error in an overridden value is reported against the override", "[config]") {
  const std::string text =
      "data: {kind: gradnorm_toy}\ntrain:\n  optimizer: {lr: 0.1}\nstrategy: {name: fixed}\n";
  const ConfigError error =
      configErrorOf([&] { parseExperiment(text, "o.yaml", {"train.optimizer.lr=abc"}); });
  CHECK(error.line() == 0);
  CHECK(error.file() == "--set train.optimizer.lr=abc");
  CHECK_THAT(
      error.what(),
      Equals("--set train.optimizer.lr=abc: train.optimizer.lr: expected a number, got 'abc'"));
  // train.lr is not a key at all: still the override's fault, not the file's.
  REQUIRE_THROWS_WITH(
      parseExperiment(text, "o.yaml", {"train.lr=abc"}),
      Equals("--set train.lr=abc: train.lr: unknown key 'lr'; valid keys here: "
             "batch_size, checkpoint_every, clip, early_stopping, epochs, eval_batch_size, "
             "log_gradients_every, max_steps_per_epoch, on_nan, optimizer, regularization, "
             "save_model, scheduler, threads"));
  REQUIRE_THROWS_WITH(
      parseExperiment(text, "o.yaml", {"train.epochs=0"}),
      Equals("--set train.epochs=0: train.epochs: 0 is out of range: must be in [1, 1000000]"));
  // An error elsewhere in the file keeps the file's location.
  REQUIRE_THROWS_WITH(
      parseExperiment(text + "bogus: 1\n", "o.yaml", {"train.epochs=2"}),
      Equals("o.yaml:5:1: bogus: unknown key 'bogus'; valid keys here: data, model, "
             "name, output, seed, strategy, tasks, train"));
}

TEST_CASE("config: malformed overrides are rejected", "[config]") {
  const std::string text =
      "data: {kind: gradnorm_toy}\ntrain: {epochs: 3}\nstrategy: {name: fixed}\n";
  REQUIRE_THROWS_WITH(parseExperiment(text, "o.yaml", {"train.epochs.max=3"}),
                      Equals("--set train.epochs.max=3: train.epochs.max: cannot set a key inside "
                             "'epochs': it is not a mapping"));
  REQUIRE_THROWS_WITH(parseExperiment(text, "o.yaml", {"train.epochs"}),
                      Equals("--set train.epochs: expected KEY.PATH=VALUE"));
  REQUIRE_THROWS_WITH(parseExperiment(text, "o.yaml", {"=3"}),
                      Equals("--set =3: expected KEY.PATH=VALUE"));
  REQUIRE_THROWS_WITH(parseExperiment(text, "o.yaml", {"train..epochs=3"}),
                      Equals("--set train..epochs=3: train..epochs: empty component in key path"));
  REQUIRE_THROWS_WITH(parseExperiment(text, "o.yaml", {"train.epochs=[1"}),
                      Contains("--set train.epochs=[1: train.epochs: value is not valid YAML"));
}

// ---------------------------------------------------------------- integrity of what is read

TEST_CASE("config: numbers are plain decimal only, in files, lists and --set", "[config]") {
  // YAML 1.1 reads 010 as octal 8 and 0x10 as 16; fulcrum reads neither.
  REQUIRE_THROWS_WITH(root("{epochs: 010}").getInt("epochs", 1),
                      Equals("f.yaml:1:10: epochs: '010' has a leading zero (YAML 1.1 reads it as "
                             "octal): write numbers in plain decimal digits"));
  REQUIRE_THROWS_WITH(root("{epochs: 0x10}").getInt("epochs", 1),
                      Contains("epochs: '0x10' is not decimal"));
  REQUIRE_THROWS_WITH(root("{epochs: 0o7}").getInt("epochs", 1), Contains("is not decimal"));
  REQUIRE_THROWS_WITH(root("{lr: 010}").getDouble("lr", 1.0), Contains("'010' has a leading zero"));
  REQUIRE_THROWS_WITH(root("{lr: 0x1p3}").getDouble("lr", 1.0), Contains("'0x1p3' is not decimal"));
  REQUIRE_THROWS_WITH(root("{h: [10, 010]}").getIntList("h", {}),
                      Contains("h[1]: '010' has a leading zero"));
  REQUIRE_THROWS_WITH(root("{w: [1, 0x2]}").getDoubleList("w", {}),
                      Contains("w[1]: '0x2' is not decimal"));
  // What is decimal still reads.
  CHECK(root("{a: 0}").getInt("a", 1) == 0);
  CHECK(root("{a: -12}").getInt("a", 1) == -12);
  CHECK(root("{a: +7}").getInt("a", 1) == 7);
  CHECK(root("{a: 0.5}").getDouble("a", 1.0) == 0.5);
  CHECK(root("{a: .5}").getDouble("a", 1.0) == 0.5);
  CHECK(root("{a: 1e-3}").getDouble("a", 1.0) == 1e-3);
  CHECK(root("{a: 2.5E+2}").getDouble("a", 1.0) == 250.0);
  CHECK(root("{a: 0.0001}").getDouble("a", 1.0) == 1e-4);
  REQUIRE_THROWS_WITH(root("{a: .inf}").getDouble("a", 1.0), Contains("expected a finite number"));
  REQUIRE_THROWS_WITH(root("{a: 1e}").getDouble("a", 1.0), Contains("expected a number, got '1e'"));
  const std::string text = "data: {kind: gradnorm_toy}\nstrategy: {name: fixed}\n";
  REQUIRE_THROWS_WITH(parseExperiment(text, "o.yaml", {"train.epochs=010"}),
                      Contains("--set train.epochs=010: train.epochs: '010' has a leading zero"));
  REQUIRE_THROWS_WITH(parseExperiment(text, "o.yaml", {"seed=0x10"}),
                      Contains("--set seed=0x10: seed: '0x10' is not decimal"));
}

TEST_CASE("config: a second YAML document is refused, located", "[config]") {
  const std::string text =
      "data: {kind: gradnorm_toy}\nstrategy: {name: fixed}\n---\ntrain: {epochs: 9}\n";
  REQUIRE_THROWS_WITH(parseExperiment(text, "two.yaml"),
                      Equals("two.yaml:4:1: a second YAML document (after '---'): an experiment "
                             "file holds one document, and fulcrum would ignore this one"));
  // A leading '---' starts the one document; a bare trailing one adds nothing.
  CHECK(parseExperiment("---\n" + text.substr(0, text.find("---")), "one.yaml").strategyName ==
        "fixed");
  CHECK(parseExperiment(text.substr(0, text.find("---")) + "---\n", "one.yaml").strategyName ==
        "fixed");
}

TEST_CASE("config: an empty or null --set value is refused, not read as the default", "[config]") {
  const std::string text =
      "data: {kind: gradnorm_toy}\ntrain: {epochs: 3}\nstrategy: {name: fixed}\n";
  for (const std::string set : {"train.epochs=", "train=~", "train.epochs=null", "strategy="}) {
    const ConfigError error = configErrorOf([&] { parseExperiment(text, "o.yaml", {set}); });
    CHECK(error.file() == "--set " + set);
    CHECK_THAT(error.message(), Contains("no value (empty or null)"));
  }
}

TEST_CASE("config: a file name that is not plain needs a name: key", "[config]") {
  const std::string text = "data: {kind: gradnorm_toy}\nstrategy: {name: fixed}\n";
  REQUIRE_THROWS_WITH(parseExperiment(text, "dir/my exp.yaml"),
                      Contains("dir/my exp.yaml:1:1: the file name 'my exp' is not a plain name"));
  REQUIRE_THROWS_WITH(parseExperiment(text, "dir/r\xc3\xa9sum\xc3\xa9.yaml"),
                      Contains("is not a plain name"));
  CHECK(parseExperiment(text + "name: mine\n", "dir/my exp.yaml").name == "mine");
  CHECK(parseExperiment(text, "dir/plain-name_1.yaml").name == "plain-name_1");
}

TEST_CASE("config: a built-in dataset's tasks may be renamed but not reordered", "[config]") {
  const std::string head = "data: {kind: multi_fashion}\nstrategy: {name: fixed}\n";
  REQUIRE_THROWS_WITH(
      parseExperiment(head + "tasks: [{name: bottom_right}, {name: top_left}]\n", "t.yaml"),
      Equals("t.yaml:3:16: tasks[0].name: 'bottom_right' is task 1 of 'multi_fashion', not task 0 "
             "(which is 'top_left'): tasks: follows the dataset's order (top_left, bottom_right); "
             "names may change, the order may not"));
  const ExperimentSpec renamed =
      parseExperiment(head + "tasks: [{name: left}, {name: right}]\n", "t.yaml");
  CHECK(renamed.tasks[0].name == "left");
  CHECK(renamed.tasks[1].name == "right");
}

TEST_CASE("config: a name too long for its files is refused when the file is read", "[config]") {
  const std::string text = "data: {kind: gradnorm_toy}\nstrategy: {name: fixed}\n";
  // <name>-fixed-seed0-<12 hex>.h5 plus 32 bytes of suffixes: 255 at most.
  const std::string longest(255 - std::string("-fixed-seed0-").size() - 12 - 3 - 32, 'n');
  CHECK(parseExperiment(text + "name: " + longest + "\n", "t.yaml").name == longest);
  const ConfigError error =
      configErrorOf([&] { parseExperiment(text + "name: " + longest + "n\n", "t.yaml"); });
  CHECK(error.line() == 3);
  CHECK(error.keyPath() == "name");
  CHECK_THAT(error.message(), Contains("beyond the file system's limit of 255"));
}

TEST_CASE("config: another strategy's name brings that strategy's defaults", "[config]") {
  const std::string text = "data: {kind: gradnorm_toy}\nstrategy: {name: gradnorm, alpha: 1.5}\n";
  const ExperimentSpec other = parseExperiment(text, "s.yaml", {"strategy.name=dwa"});
  CHECK(other.strategyName == "dwa");
  CHECK(other.strategy.keys() == std::vector<std::string>{"name"});
  // Options given after the switch apply to the new strategy.
  const ExperimentSpec tuned =
      parseExperiment(text, "s.yaml", {"strategy.name=dwa", "strategy.temperature=3"});
  CHECK(tuned.strategy.keys() == std::vector<std::string>{"name", "temperature"});
  // The same name keeps the file's options.
  const ExperimentSpec same = parseExperiment(text, "s.yaml", {"strategy.name=gradnorm"});
  CHECK(same.strategy.keys() == std::vector<std::string>{"name", "alpha"});
}

TEST_CASE("config: a nested --set whose key is unknown is blamed on the --set", "[config]") {
  const std::string text =
      "data: {kind: gradnorm_toy}\ntrain: {epochs: 2}\nstrategy: {name: fixed}\n";
  // 'optimzer' is not in the file: the --set created it on its way to 'lr'.
  REQUIRE_THROWS_WITH(parseExperiment(text, "n.yaml", {"train.optimzer.lr=0.1"}),
                      Equals("--set train.optimzer.lr=0.1: train.optimzer: unknown key 'optimzer' "
                             "(did you mean 'optimizer'?)"));
  // A key the file has keeps the file's location even when a --set reached inside it.
  REQUIRE_THROWS_WITH(parseExperiment(text + "bogus: {a: 1}\n", "n.yaml", {"bogus.b=2"}),
                      Contains("n.yaml:4:1: bogus: unknown key 'bogus'"));
}
