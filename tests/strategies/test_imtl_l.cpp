#include <catch2/catch.hpp>

#include <cmath>

#include "strategies/imtl_l.h"
#include "strategies/registry.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;

TEST_CASE("imtl_l: objective, weights and the gradient on the scales", "[strategy][imtl_l]") {
  const auto tasks = makeTasks({"a", "b"});
  ImtlL imtl(ImtlLOptions{}, tasks);
  imtl.attach(makeContext(tasks));
  {
    torch::NoGradGuard noGrad;
    imtl.parameters()[0][1] = std::log(2.0);
  }
  FixedGradients none;
  const std::vector<torch::Tensor> losses = makeLosses({2.0, 3.0});
  const StepOutput out = imtl.step(StepInput{losses, none, 0, 0});
  // s = (0, ln 2): (e^0·2 − 0) + (2·3 − ln 2) = 8 − ln 2.
  REQUIRE(out.objective.item<double>() == Approx(8.0 - std::log(2.0)));
  const std::vector<double> w = weightsOf(out);
  REQUIRE(w[0] == Approx(1.0));
  REQUIRE(w[1] == Approx(2.0));
  out.objective.backward();
  // ∂/∂s_i = e^{s_i} L_i − 1 = (1, 5); ∂/∂L_i = e^{s_i} = (1, 2).
  const torch::Tensor grad = imtl.parameters()[0].grad();
  REQUIRE(grad[0].item<double>() == Approx(1.0));
  REQUIRE(grad[1].item<double>() == Approx(5.0));
  REQUIRE(losses[1].grad().item<double>() == Approx(2.0));
}

TEST_CASE("imtl_l: gradient steps on s balance the scaled losses to 1", "[strategy][imtl_l]") {
  const auto tasks = makeTasks({"small", "large"});
  ImtlL imtl(ImtlLOptions{}, tasks);
  imtl.attach(makeContext(tasks));
  torch::optim::SGD sgd(imtl.parameters(), torch::optim::SGDOptions(0.05));
  FixedGradients none;
  for (int step = 0; step < 2000; ++step) {
    sgd.zero_grad();
    stepWith(imtl, {0.5, 20.0}, none).objective.backward();
    sgd.step();
  }
  // The fixed point e^{s_i} L_i = 1: weights 1/L_i = (2, 0.05).
  const std::vector<double> w = weightsOf(stepWith(imtl, {0.5, 20.0}, none));
  REQUIRE(w[0] == Approx(2.0).epsilon(1e-3));
  REQUIRE(w[1] == Approx(0.05).epsilon(1e-3));
}

TEST_CASE("imtl_l: options and state", "[strategy][imtl_l][state]") {
  const auto tasks = makeTasks({"a", "b"});
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: imtl_l, init_scale: 40}"), tasks),
                      Catch::Contains("init_scale: 40 is out of range"));
  auto first = makeStrategy(yamlNode("{name: imtl_l, init_scale: 0.5}"), tasks);
  auto second = makeStrategy(yamlNode("{name: imtl_l}"), tasks);
  first->attach(makeContext(tasks));
  second->attach(makeContext(tasks));
  second->loadState(first->state());
  FixedGradients none;
  REQUIRE(weightsOf(stepWith(*second, {1.0, 1.0}, none))[0] == Approx(std::exp(0.5)));
}
