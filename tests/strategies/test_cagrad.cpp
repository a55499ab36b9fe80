#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "framework/gradients.h"
#include "strategies/cagrad.h"
#include "strategies/registry.h"
#include "strategies/support.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;

TEST_CASE("cagrad: c = 0 is the mean gradient", "[strategy][cagrad]") {
  const auto tasks = makeTasks({"a", "b"});
  for (const char* rescale : {"0", "1", "2"}) {
    auto cagrad = attached(std::string("{name: cagrad, c: 0, rescale: ") + rescale + "}", tasks);
    FixedGradients g({{1, 0}, {-1, 2}});  // mean (0, 1)
    const StepOutput out = stepWith(*cagrad, {1, 1}, g);
    REQUIRE(out.kind == StepOutput::Kind::kSharedGradient);
    const auto d = directionOf(out);
    REQUIRE(d[0] == Approx(0.0).margin(1e-12));
    REQUIRE(d[1] == Approx(1.0));
  }
}

TEST_CASE("cagrad: orthogonal, opposed and the three rescalings", "[strategy][cagrad]") {
  const auto tasks = makeTasks({"a", "b"});
  SECTION("orthogonal unit gradients") {
    // g0 = (1/2,1/2), ‖g0‖ = 1/√2; by symmetry w = (1/2,1/2), g_w = g0, so
    // d = g0 + (c‖g0‖/‖g0‖) g0 = (1 + c) g0 = (0.75, 0.75) for c = 0.5;
    // rescale 1: /(1 + 0.25) = 0.6; rescale 2: /(1 + 0.5) = 0.5.
    FixedGradients g({{1, 0}, {0, 1}});
    const std::vector<std::pair<const char*, double>> cases{{"0", 0.75}, {"1", 0.6}, {"2", 0.5}};
    for (const auto& [rescale, expected] : cases) {
      auto cagrad = attached(std::string("{name: cagrad, rescale: ") + rescale + "}", tasks);
      const StepOutput out = stepWith(*cagrad, {1, 1}, g);
      const auto d = directionOf(out);
      INFO("rescale " << rescale);
      REQUIRE(d[0] == Approx(expected).epsilon(1e-6));
      REQUIRE(d[1] == Approx(expected).epsilon(1e-6));
      REQUIRE(weightsOf(out) == std::vector<double>{1.0, 1.0});
    }
  }
  SECTION("opposed gradients: g0 = 0, so φ = 0 and d = 0") {
    auto cagrad = attached("{name: cagrad}", tasks);
    FixedGradients g({{1, 0}, {-1, 0}});
    const auto d = directionOf(stepWith(*cagrad, {1, 1}, g));
    REQUIRE(d[0] == Approx(0.0).margin(1e-12));
    REQUIRE(d[1] == Approx(0.0).margin(1e-12));
  }
}

TEST_CASE("cagrad: d solves the primal problem (a dominant gradient)", "[strategy][cagrad]") {
  const auto tasks = makeTasks({"a", "b"});
  auto cagrad = attached("{name: cagrad, c: 0.5, rescale: 0}", tasks);
  // g_a dominates: (10, 0) against (−1, 1). g0 = (4.5, 0.5).
  const std::vector<std::vector<double>> rows{{10, 0}, {-1, 1}};
  FixedGradients g(rows);
  const auto d = directionOf(stepWith(*cagrad, {1, 1}, g));
  const double g0x = 4.5, g0y = 0.5, radius = 0.5 * std::sqrt(g0x * g0x + g0y * g0y);
  auto worst = [&](double x, double y) {
    return std::min(rows[0][0] * x + rows[0][1] * y, rows[1][0] * x + rows[1][1] * y);
  };
  // d lies on the ball's boundary and no point of the boundary does better
  // on the worst task (the maximum of a concave function over the ball).
  REQUIRE(std::hypot(d[0] - g0x, d[1] - g0y) == Approx(radius).epsilon(1e-6));
  const double best = worst(d[0], d[1]);
  for (int k = 0; k < 3600; ++k) {
    const double angle = 2.0 * M_PI * k / 3600.0;
    REQUIRE(worst(g0x + radius * std::cos(angle), g0y + radius * std::sin(angle)) <= best + 1e-6);
  }
  // Better on the worst task than the mean gradient: min(10·4.5, −4.5 + 0.5) = −4.
  REQUIRE(worst(g0x, g0y) == Approx(-4.0));
  REQUIRE(best > -4.0 + 1.0);
}

TEST_CASE("cagrad: TorchJD's documented example", "[strategy][cagrad]") {
  // torchjd.org, aggregation/cagrad: CAGrad(c=0.5) on [[-4,1,1],[6,1,1]] gives
  // (0.1835, 1.2041, 1.2041) (Algorithm 1, no rescaling).
  const auto tasks = makeTasks({"a", "b"});
  auto cagrad = attached("{name: cagrad, c: 0.5, rescale: 0}", tasks);
  FixedGradients g({{-4, 1, 1}, {6, 1, 1}});
  const auto d = directionOf(stepWith(*cagrad, {1, 1}, g));
  REQUIRE(d[0] == Approx(0.1835).margin(1e-4));
  REQUIRE(d[1] == Approx(1.2041).margin(1e-4));
  REQUIRE(d[2] == Approx(1.2041).margin(1e-4));
}

TEST_CASE("cagrad: representation gradients and options", "[strategy][cagrad]") {
  const auto tasks = makeTasks({"a", "b"});
  auto cagrad = attached("{name: cagrad, gradients: representation, c: 0}", tasks);
  REQUIRE(cagrad->needs() == GradientNeed::kRepresentation);
  FixedGradientSource source(torch::zeros({2, 2}, torch::kFloat64), {},
                             torch::tensor({2.0, 0.0, 0.0, 4.0}, torch::kFloat64).view({2, 2}));
  const StepOutput out = stepWith(*cagrad, {1, 1}, source);
  REQUIRE(out.kind == StepOutput::Kind::kRepresentationGradient);
  REQUIRE(directionOf(out) == std::vector<double>{1.0, 2.0});
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: cagrad, rescale: 3}"), tasks),
                      Catch::Contains("rescale: 3 is out of range"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: cagrad, c: -1}"), tasks),
                      Catch::Contains("c: -1 is out of range"));
}
