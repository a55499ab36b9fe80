#include <catch2/catch.hpp>

#include "framework/gradients.h"
#include "strategies/mgda.h"
#include "strategies/registry.h"
#include "strategies/support.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;

TEST_CASE("mgda: two tasks in closed form", "[strategy][mgda]") {
  const auto tasks = makeTasks({"a", "b"});
  auto mgda = attached("{name: mgda}", tasks);
  REQUIRE(mgda->needs() == GradientNeed::kSharedParameters);
  SECTION("orthogonal unit gradients: α = (1/2, 1/2)") {
    FixedGradients g({{1, 0}, {0, 1}});
    const StepOutput out = stepWith(*mgda, {1, 1}, g);
    REQUIRE(out.kind == StepOutput::Kind::kSharedGradient);
    const auto d = directionOf(out);
    REQUIRE(d[0] == Approx(0.5));
    REQUIRE(d[1] == Approx(0.5));
    // Diagnostics: iterations (0: closed form), α_a, α_b.
    REQUIRE(out.diagnostics == std::vector<double>{0.0, 0.5, 0.5});
    // Heads get their own gradients (the paper's Algorithm 2).
    REQUIRE(weightsOf(out) == std::vector<double>{1.0, 1.0});
  }
  SECTION("unequal orthogonal gradients (2,0), (0,1): α = (0.2, 0.8)") {
    // γ = (v2·v2 − v1·v2)/‖v1 − v2‖² = 1/5; d = (0.4, 0.8), orthogonal to g_a − g_b = (2, −1).
    FixedGradients g({{2, 0}, {0, 1}});
    const auto d = directionOf(stepWith(*mgda, {1, 1}, g));
    REQUIRE(d[0] == Approx(0.4));
    REQUIRE(d[1] == Approx(0.8));
  }
  SECTION("opposed gradients: the hull holds 0, d = 0") {
    FixedGradients g({{1, 0}, {-1, 0}});
    const auto d = directionOf(stepWith(*mgda, {1, 1}, g));
    REQUIRE(d[0] == Approx(0.0).margin(1e-12));
    REQUIRE(d[1] == Approx(0.0).margin(1e-12));
  }
  SECTION("a dominant gradient: the smaller one is the min-norm point") {
    // (1,0)·(1,2) = 1 ≥ ‖(1,0)‖² = 1, so α = (1, 0).
    FixedGradients g({{1, 0}, {1, 2}});
    const StepOutput out = stepWith(*mgda, {1, 1}, g);
    const auto d = directionOf(out);
    REQUIRE(d[0] == Approx(1.0));
    REQUIRE(d[1] == Approx(0.0).margin(1e-12));
    REQUIRE(out.diagnostics[1] == 1.0);
    REQUIRE(out.diagnostics[2] == 0.0);
  }
}

TEST_CASE("mgda: Frank-Wolfe for three tasks equals the closed form when one is redundant",
          "[strategy][mgda]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  auto mgda = attached("{name: mgda}", tasks);
  // g_c = g_a: the hull is the segment of (2,0), (0,1), whose closed form is (0.4, 0.8).
  FixedGradients g({{2, 0}, {0, 1}, {2, 0}});
  const StepOutput out = stepWith(*mgda, {1, 1, 1}, g);
  const auto d = directionOf(out);
  REQUIRE(d[0] == Approx(0.4).margin(1e-3));
  REQUIRE(d[1] == Approx(0.8).margin(1e-3));
  REQUIRE(out.diagnostics[0] >= 1.0);
  REQUIRE(out.diagnostics[0] <= 250.0);
}

TEST_CASE("mgda: gradient normalisations", "[strategy][mgda]") {
  const auto tasks = makeTasks({"a", "b"});
  FixedGradients g({{2, 0}, {0, 1}});
  SECTION("l2: unit gradients give α = (1/2, 1/2), applied to the raw ones") {
    auto mgda = attached("{name: mgda, normalization: l2}", tasks);
    const auto d = directionOf(stepWith(*mgda, {1, 1}, g));
    REQUIRE(d[0] == Approx(1.0));  // 0.5·2
    REQUIRE(d[1] == Approx(0.5));  // 0.5·1
  }
  SECTION("loss: losses (2, 1) make both normalised gradients unit") {
    auto mgda = attached("{name: mgda, normalization: loss}", tasks);
    const auto d = directionOf(stepWith(*mgda, {2, 1}, g));
    REQUIRE(d[0] == Approx(1.0));
    REQUIRE(d[1] == Approx(0.5));
  }
  SECTION("loss+: divide by L·‖g‖ = (4, 1)") {
    // (0.5, 0) and (0, 1): γ = 1/(0.25 + 1) = 0.8 → d = 0.8·(2,0) + 0.2·(0,1).
    auto mgda = attached("{name: mgda, normalization: loss+, head_weights: alpha}", tasks);
    const StepOutput out = stepWith(*mgda, {2, 1}, g);
    const auto d = directionOf(out);
    REQUIRE(d[0] == Approx(1.6));
    REQUIRE(d[1] == Approx(0.2));
    const auto w = weightsOf(out);
    REQUIRE(w[0] == Approx(0.8));
    REQUIRE(w[1] == Approx(0.2));
  }
  SECTION("a loss normalisation with a zero loss is an error naming the task") {
    auto mgda = attached("{name: mgda, normalization: loss}", tasks);
    REQUIRE_THROWS_WITH(stepWith(*mgda, {1, 0}, g), Catch::Contains("task 'b' has loss 0"));
  }
}

TEST_CASE("mgda: MGDA-UB works on the representation gradients", "[strategy][mgda]") {
  const auto tasks = makeTasks({"a", "b"});
  auto mgda = attached("{name: mgda, gradients: representation}", tasks);
  REQUIRE(mgda->needs() == GradientNeed::kRepresentation);
  // The parameter matrix would give α = (1/2, 1/2); the representation one (2,0),(0,1) gives (0.2, 0.8).
  FixedGradientSource source(torch::tensor({1.0, 0.0, 0.0, 1.0}, torch::kFloat64).view({2, 2}), {},
                             torch::tensor({2.0, 0.0, 0.0, 1.0}, torch::kFloat64).view({2, 2}));
  const StepOutput out = stepWith(*mgda, {1, 1}, source);
  REQUIRE(out.kind == StepOutput::Kind::kRepresentationGradient);
  const auto d = directionOf(out);
  REQUIRE(d[0] == Approx(0.4));
  REQUIRE(d[1] == Approx(0.8));
}

TEST_CASE("mgda: options", "[strategy][mgda]") {
  const auto tasks = makeTasks({"a", "b"});
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: mgda, normalization: l1}"), tasks),
                      Catch::Contains("'l1' is not one of: none, l2, loss, loss+"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: mgda, gradients: last}"), tasks),
                      Catch::Contains("is not one of: parameters, representation"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: mgda, max_iterations: 0}"), tasks),
                      Catch::Contains("max_iterations: 0 is out of range"));
  auto mgda = makeStrategy(yamlNode("{name: mgda}"), tasks);
  const std::vector<std::string> names = mgda->diagnosticNames();
  REQUIRE(names.size() == 3);
  REQUIRE(names[0] == "iterations");
  REQUIRE(names[1] == "alpha_a");
  REQUIRE(names[2] == "alpha_b");
}
