// train.optimizer: each kind's steps against values derived by hand from its
// update rule (PyTorch's, which LibTorch implements), its YAML keys, and its
// state surviving a checkpoint round trip.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "framework/experiment.h"
#include "framework/trainer.h"

using namespace fulcrum;
using Catch::Matchers::Equals;

namespace {

/// x0 = 1 (double); one optimizer step per gradient in `gradients`; the
/// values of x after each.
std::vector<double> steps(const OptimizerSpec& spec, const std::vector<double>& gradients) {
  auto x = torch::ones({1}, torch::kDouble).requires_grad_(true);
  auto optimizer = makeOptimizer(spec, {x}, {});
  std::vector<double> values;
  for (double g : gradients) {
    optimizer->zero_grad();
    x.mutable_grad() = torch::full({1}, g, torch::kDouble);
    optimizer->step();
    values.push_back(x.item<double>());
  }
  return values;
}

OptimizerSpec parse(const std::string& optimizer) {
  return parseExperiment("data: {kind: gradnorm_toy}\ntrain: {optimizer: " + optimizer +
                             "}\nstrategy: {name: fixed}\n",
                         "t.yaml")
      .train.optimizer;
}

}  // namespace

TEST_CASE("optimizers: one or two steps of each kind equal their update rules", "[optimizer]") {
  using Catch::Detail::Approx;
  SECTION("adam, betas [0.5, 0.9], g = 2 then 4") {
    // m1 = 1, v1 = 0.4, m̂ = 2, v̂ = 4: x1 = 1 − 0.1·2/(2 + 1e-8).
    // m2 = 0.5·1 + 0.5·4 = 2.5, v2 = 0.9·0.4 + 0.1·16 = 1.96; bias corrections
    // 0.75 and 0.19: x2 = x1 − 0.1·(2.5/0.75)/(√(1.96/0.19) + 1e-8).
    const auto x = steps(parse("{kind: adam, lr: 0.1, betas: [0.5, 0.9]}"), {2, 4});
    CHECK(x[0] == Approx(0.9000000005).margin(1e-12));
    CHECK(x[1] == Approx(0.7962166926435893).margin(1e-12));
  }
  SECTION("adamw: decoupled decay; fulcrum's default 0, not LibTorch's 0.01") {
    // x1 = 1·(1 − 0.1·0.01) − 0.1·2/(2 + 1e-8); an L2 term would leave 0.9.
    const auto x = steps(parse("{kind: adamw, lr: 0.1, weight_decay: 0.01}"), {2});
    CHECK(x[0] == Approx(0.8990000005).margin(1e-12));
    CHECK(steps(parse("{kind: adamw, lr: 0.1}"), {2})[0] == Approx(0.9000000005).margin(1e-12));
  }
  SECTION("sgd, Nesterov momentum 0.9, g = 2 twice") {
    // b1 = 2, d1 = 2 + 0.9·2 = 3.8: x1 = 0.62; b2 = 0.9·2 + 2 = 3.8,
    // d2 = 2 + 0.9·3.8 = 5.42: x2 = 0.62 − 0.542 = 0.078.
    const auto x = steps(parse("{kind: sgd, lr: 0.1, momentum: 0.9, nesterov: true}"), {2, 2});
    CHECK(x[0] == Approx(0.62).margin(1e-12));
    CHECK(x[1] == Approx(0.078).margin(1e-12));
  }
  SECTION("rmsprop, centred") {
    // v = 0.01·4 = 0.04, mean 0.01·2 = 0.02: x1 = 1 − 0.01·2/(√(0.04 − 0.0004) + 1e-8).
    const auto x = steps(parse("{kind: rmsprop, lr: 0.01, centered: true}"), {2});
    CHECK(x[0] == Approx(0.8994962235245836).margin(1e-12));
  }
  SECTION("rmsprop, momentum 0.5, g = 2 twice") {
    // v1 = 0.04, b1 = 2/(0.2 + 1e-8), x1 = 1 − 0.01·b1; v2 = 0.99·0.04 + 0.04
    // = 0.0796, b2 = 0.5·b1 + 2/(√0.0796 + 1e-8), x2 = x1 − 0.01·b2.
    const auto x = steps(parse("{kind: rmsprop, lr: 0.01, momentum: 0.5}"), {2, 2});
    CHECK(x[0] == Approx(0.9000000049999998).margin(1e-12));
    CHECK(x[1] == Approx(0.7791118895117288).margin(1e-12));
  }
  SECTION("adagrad, lr_decay 0.5, initial accumulator 0.1, g = 2 twice") {
    // s1 = 0.1 + 4, x1 = 1 − 0.1·2/(√4.1 + 1e-10); step 2's rate 0.1/(1 + 0.5),
    // s2 = 8.1: x2 = x1 − (0.1/1.5)·2/(√8.1 + 1e-10).
    const auto x = steps(
        parse("{kind: adagrad, lr: 0.1, lr_decay: 0.5, initial_accumulator_value: 0.1}"), {2, 2});
    CHECK(x[0] == Approx(0.9012270403399191).margin(1e-12));
    CHECK(x[1] == Approx(0.8543784824131447).margin(1e-12));
  }
  SECTION("adam's defaults are PyTorch's (and today's)") {
    const auto spec = parse("{kind: adam}");
    CHECK(spec.beta1 == 0.9);
    CHECK(spec.beta2 == 0.999);
    CHECK(spec.eps == 1e-8);
    CHECK(spec.weightDecay == 0.0);
    CHECK(parse("{kind: adagrad}").eps == 1e-10);
  }
}

TEST_CASE("optimizers: each kind's state survives a save and load", "[optimizer]") {
  const std::string kind = GENERATE("adam", "adamw", "sgd", "rmsprop", "adagrad");
  OptimizerSpec spec = parse("{kind: " + kind + ", lr: 0.1}");
  if (kind == "sgd" || kind == "rmsprop") spec.momentum = 0.5;
  auto x = torch::ones({2}, torch::kDouble).requires_grad_(true);
  auto y = torch::ones({2}, torch::kDouble).requires_grad_(true);
  auto first = makeOptimizer(spec, {x}, {});
  auto second = makeOptimizer(spec, {y}, {});
  const auto gradient = torch::tensor({2.0, -3.0}, torch::kDouble);
  x.mutable_grad() = gradient.clone();
  first->step();
  torch::serialize::OutputArchive out;
  first->save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  torch::serialize::InputArchive in;
  std::istringstream read(bytes.str());
  in.load_from(read);
  second->load(in);
  {
    torch::NoGradGuard noGrad;
    y.copy_(x);
  }
  x.mutable_grad() = gradient.clone();
  y.mutable_grad() = gradient.clone();
  first->step();
  second->step();
  INFO(kind);
  CHECK(torch::equal(x, y));
}

TEST_CASE("optimizers: a key of another kind, bad betas and Nesterov without momentum are located",
          "[optimizer]") {
  REQUIRE_THROWS_WITH(parse("{kind: sgd, betas: [0.9, 0.99]}"),
                      Equals("t.yaml:2:39: train.optimizer.betas: is used only with 'kind: adam' "
                             "or 'kind: adamw' (kind is 'sgd')"));
  REQUIRE_THROWS_WITH(parse("{kind: adam, betas: [0.9]}"),
                      Equals("t.yaml:2:40: train.optimizer.betas: needs two numbers [beta1, "
                             "beta2], got 1"));
  REQUIRE_THROWS_WITH(parse("{kind: sgd, nesterov: true}"),
                      Equals("t.yaml:2:42: train.optimizer.nesterov: needs momentum > 0 "
                             "(Nesterov momentum without momentum is plain sgd)"));
  REQUIRE_THROWS_WITH(parse("{kind: adagrad, lr_decay: -1}"),
                      Catch::Contains("train.optimizer.lr_decay"));
  REQUIRE_THROWS_WITH(parse("{kind: lamb}"), Catch::Contains("train.optimizer.kind"));
}
