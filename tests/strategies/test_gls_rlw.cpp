#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>

#include "strategies/gls.h"
#include "strategies/registry.h"
#include "strategies/rlw.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;

TEST_CASE("gls: the geometric mean of the losses and its effective weights", "[strategy][gls]") {
  const auto tasks = makeTasks({"a", "b"});
  GeometricLossStrategy gls(tasks);
  gls.attach(makeContext(tasks));
  FixedGradients none;
  const std::vector<torch::Tensor> losses = makeLosses({1.0, 4.0});
  const StepOutput out = gls.step(StepInput{losses, none, 0, 0});
  // (1 · 4)^(1/2) = 2.
  REQUIRE(out.objective.item<double>() == Approx(2.0));
  // ∂/∂L_i = L / (T L_i): 2 / (2·1) = 1 and 2 / (2·4) = 0.25.
  const std::vector<double> w = weightsOf(out);
  REQUIRE(w[0] == Approx(1.0));
  REQUIRE(w[1] == Approx(0.25));
  out.objective.backward();
  REQUIRE(losses[0].grad().item<double>() == Approx(1.0));
  REQUIRE(losses[1].grad().item<double>() == Approx(0.25));
}

TEST_CASE("gls: three tasks", "[strategy][gls]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  GeometricLossStrategy gls(tasks);
  gls.attach(makeContext(tasks));
  FixedGradients none;
  // (2 · 4 · 8)^(1/3) = 64^(1/3) = 4; weights 4 / (3 L_i) = 2/3, 1/3, 1/6.
  const StepOutput out = stepWith(gls, {2.0, 4.0, 8.0}, none);
  REQUIRE(out.objective.item<double>() == Approx(4.0));
  const std::vector<double> w = weightsOf(out);
  REQUIRE(w[0] == Approx(2.0 / 3.0));
  REQUIRE(w[1] == Approx(1.0 / 3.0));
  REQUIRE(w[2] == Approx(1.0 / 6.0));
}

TEST_CASE("gls: takes no options", "[strategy][gls]") {
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: gls, alpha: 1}"), makeTasks({"a", "b"})),
                      Catch::Contains("unknown key 'alpha'"));
}

TEST_CASE("rlw: softmax weights that change every step, fixed by the seed", "[strategy][rlw]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  auto run = [&](uint64_t seed, const std::string& options) {
    auto rlw = makeStrategy(yamlNode(options), tasks);
    StrategyContext context = makeContext(tasks);
    context.seed = seed;
    rlw->attach(context);
    FixedGradients none;
    std::vector<std::vector<double>> weights;
    for (int step = 0; step < 4; ++step) weights.push_back(weightsOf(stepWith(*rlw, {1.0, 2.0, 3.0}, none, step)));
    return weights;
  };
  const auto a = run(7, "{name: rlw}");
  const auto b = run(7, "{name: rlw}");
  const auto c = run(8, "{name: rlw}");
  REQUIRE(a == b);
  REQUIRE(a != c);
  REQUIRE(a[0] != a[1]);
  for (const auto& w : a) {
    REQUIRE(std::accumulate(w.begin(), w.end(), 0.0) == Approx(1.0));
    for (double x : w) REQUIRE(x > 0.0);
  }
  // scale: tasks multiplies the same draws by T = 3.
  const auto scaled = run(7, "{name: rlw, scale: tasks}");
  for (std::size_t i = 0; i < 3; ++i) REQUIRE(scaled[1][i] == Approx(3.0 * a[1][i]));
}

TEST_CASE("rlw: the objective is the weighted sum with the reported weights", "[strategy][rlw]") {
  const auto tasks = makeTasks({"a", "b"});
  RandomLossWeighting rlw(RlwOptions{}, tasks);
  rlw.attach(makeContext(tasks));
  FixedGradients none;
  const StepOutput out = stepWith(rlw, {3.0, 5.0}, none);
  const std::vector<double> w = weightsOf(out);
  REQUIRE(out.objective.item<double>() == Approx(3.0 * w[0] + 5.0 * w[1]).epsilon(1e-6));
}

TEST_CASE("rlw: a restored state continues the same sequence", "[strategy][rlw][state]") {
  const auto tasks = makeTasks({"a", "b"});
  RandomLossWeighting first(RlwOptions{}, tasks), second(RlwOptions{}, tasks);
  StrategyContext context = makeContext(tasks);
  context.seed = 3;
  first.attach(context);
  second.attach(makeContext(tasks));  // another seed: loadState must override it
  FixedGradients none;
  stepWith(first, {1.0, 1.0}, none);
  stepWith(first, {1.0, 1.0}, none);
  second.loadState(first.state());
  REQUIRE(weightsOf(stepWith(second, {1.0, 1.0}, none)) == weightsOf(stepWith(first, {1.0, 1.0}, none)));
}
