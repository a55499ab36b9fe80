#include <catch2/catch.hpp>
#include <cmath>

#include "strategies/registry.h"
#include "strategies/stch.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;

namespace {

SmoothTchebycheff makeStch(const std::vector<TaskSpec>& tasks, double mu,
                           std::vector<double> nadir) {
  StchOptions options;
  options.mu = mu;
  options.nadir = std::move(nadir);
  SmoothTchebycheff stch(options, tasks);
  stch.attach(makeContext(tasks));
  return stch;
}

}  // namespace

TEST_CASE("stch: value, weights and gradient for a given nadir, mu = 1", "[strategy][stch]") {
  const auto tasks = makeTasks({"a", "b"});
  SmoothTchebycheff stch = makeStch(tasks, 1.0, {2.0, 1.0});
  FixedGradients none;
  const std::vector<torch::Tensor> losses = makeLosses({2.0, 3.0});
  const StepOutput out = stch.step(StepInput{losses, none, 0, 0});
  // u = log(L / n) = (log 1, log 3); mu = 1: log(e^0 + e^{log 3}) = log 4.
  REQUIRE(out.objective.item<double>() == Approx(std::log(4.0)));
  // p = softmax(u) = (1/4, 3/4); dL/dL_i = p_i / L_i = (1/8, 1/4).
  REQUIRE(out.diagnostics[0] == Approx(0.25));
  REQUIRE(out.diagnostics[1] == Approx(0.75));
  const std::vector<double> w = weightsOf(out);
  REQUIRE(w[0] == Approx(0.125));
  REQUIRE(w[1] == Approx(0.25));
  out.objective.backward();
  REQUIRE(losses[0].grad().item<double>() == Approx(0.125));
  REQUIRE(losses[1].grad().item<double>() == Approx(0.25));
}

TEST_CASE("stch: mu = 0.5 sharpens the softmax", "[strategy][stch]") {
  const auto tasks = makeTasks({"a", "b"});
  SmoothTchebycheff stch = makeStch(tasks, 0.5, {2.0, 1.0});
  FixedGradients none;
  const StepOutput out = stepWith(stch, {2.0, 3.0}, none);
  // u/mu = (0, 2 log 3): 0.5 log(1 + 9) = 0.5 log 10.
  REQUIRE(out.objective.item<double>() == Approx(0.5 * std::log(10.0)));
  // p = (1/10, 9/10); weights p / L = (0.05, 0.3).
  const std::vector<double> w = weightsOf(out);
  REQUIRE(w[0] == Approx(0.05));
  REQUIRE(w[1] == Approx(0.3));
}

TEST_CASE("stch: small mu tends to the max, large mu to the mean plus mu log T",
          "[strategy][stch]") {
  const auto tasks = makeTasks({"a", "b"});
  FixedGradients none;
  // nadir 1: u = (log 2, log 3). mu log(2^{1/mu} + 3^{1/mu}) = log 3 + mu log(1 + (2/3)^{1/mu}).
  // mu = 0.1: (2/3)^10 = 0.0173415, 0.1 · log(1.0173415) = 0.0017193.
  SmoothTchebycheff sharp = makeStch(tasks, 0.1, {1.0, 1.0});
  const double small = stepWith(sharp, {2.0, 3.0}, none).objective.item<double>();
  REQUIRE(small == Approx(std::log(3.0) + 0.0017193).epsilon(1e-6));
  REQUIRE(small > std::log(3.0));
  REQUIRE(small < std::log(3.0) + 0.1 * std::log(2.0));  // max <= value <= max + mu log T
  // mu = 100: value − 100 log 2 → mean(u) = (log 2 + log 3)/2 = 0.895880, plus
  // Var(u)/(2 mu) = 0.2027326² / 200 = 0.000206.
  SmoothTchebycheff flat = makeStch(tasks, 100.0, {1.0, 1.0});
  const double large = stepWith(flat, {2.0, 3.0}, none).objective.item<double>();
  REQUIRE(large - 100.0 * std::log(2.0) == Approx(0.895880 + 0.000206).epsilon(1e-5));
}

TEST_CASE("stch: sum of log-losses during the warm-up, then the nadir of the last warm-up epoch",
          "[strategy][stch]") {
  const auto tasks = makeTasks({"a", "b"});
  auto strategy = makeStrategy(yamlNode("{name: stch, warmup_epochs: 2}"), tasks);
  auto& stch = dynamic_cast<SmoothTchebycheff&>(unwrapStrategy(*strategy));
  stch.attach(makeContext(tasks));
  FixedGradients none;
  // Warm-up: log 2 + log 3 = log 6; weights 1/L = (1/2, 1/3); no softmax yet.
  StepOutput out = stepWith(stch, {2.0, 3.0}, none, 0, 0);
  REQUIRE(out.objective.item<double>() == Approx(std::log(6.0)));
  REQUIRE(weightsOf(out)[0] == Approx(0.5));
  REQUIRE(weightsOf(out)[1] == Approx(1.0 / 3.0));
  REQUIRE(std::isnan(out.diagnostics[0]));
  stch.onEpochEnd(EpochStats{0, {2.0, 3.0}});
  REQUIRE(stch.nadir().empty());  // epoch 0 of W = 2 is not the last warm-up epoch
  stch.onEpochEnd(EpochStats{1, {4.0, 1.0}});
  REQUIRE(stch.nadir() == std::vector<double>{4.0, 1.0});
  stch.onEpochEnd(EpochStats{2, {9.0, 9.0}});
  REQUIRE(stch.nadir() == std::vector<double>{4.0, 1.0});  // set once
  // L/n = (0.5, 3): log 3.5.
  out = stepWith(stch, {2.0, 3.0}, none, 10, 2);
  REQUIRE(out.objective.item<double>() == Approx(std::log(3.5)));
  REQUIRE(out.diagnostics[0] == Approx(0.5 / 3.5));
}

TEST_CASE("stch: the nadir survives a state round trip", "[strategy][stch]") {
  const auto tasks = makeTasks({"a", "b"});
  SmoothTchebycheff first(StchOptions{}, tasks);
  first.attach(makeContext(tasks));
  REQUIRE(first.state().at("nadir").numel() == 0);
  first.onEpochEnd(EpochStats{0, {4.0, 1.0}});
  SmoothTchebycheff second(StchOptions{}, tasks);
  second.attach(makeContext(tasks));
  second.loadState(first.state());
  REQUIRE(second.nadir() == std::vector<double>{4.0, 1.0});
  FixedGradients none;
  REQUIRE(stepWith(second, {2.0, 3.0}, none).objective.item<double>() == Approx(std::log(3.5)));
  REQUIRE_THROWS_WITH(
      second.loadState({{"nadir", torch::tensor({1.0, 2.0, 3.0}, torch::kFloat64)}}),
      Catch::Contains("'nadir' has 3 entries, expected 0 or 2"));
  REQUIRE_THROWS_WITH(second.loadState({{"nadir", torch::tensor({1.0, 0.0}, torch::kFloat64)}}),
                      Catch::Contains("nadir of task 'b' must be finite and > 0"));
}

TEST_CASE("stch: options are validated", "[strategy][stch]") {
  const auto tasks = makeTasks({"a", "b"});
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: stch, mu: 0}"), tasks),
                      Catch::Contains("strategy.mu: must be > 0, got 0"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: stch, warmup_epochs: 0}"), tasks),
                      Catch::Contains("strategy.warmup_epochs"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: stch, nadir: [1]}"), tasks),
                      Catch::Contains("strategy.nadir: needs one value per task (2: a, b), got 1"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: stch, nadir: [1, -1]}"), tasks),
                      Catch::Contains("values must be > 0, got -1"));
  REQUIRE_THROWS_WITH(
      makeStrategy(yamlNode("{name: stch, nadir: [1, 1], warmup_epochs: 2}"), tasks),
      Catch::Contains("strategy.warmup_epochs: cannot be combined with a given 'nadir'"));
}
