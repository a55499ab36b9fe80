#include <catch2/catch.hpp>

#include <cmath>

#include "framework/gradients.h"
#include "strategies/imtl.h"
#include "strategies/registry.h"
#include "strategies/support.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;

TEST_CASE("imtl: IMTL-G on hand-derived pairs", "[strategy][imtl]") {
  const auto tasks = makeTasks({"a", "b"});
  auto imtl = attached("{name: imtl, mode: gradient}", tasks);
  REQUIRE(imtl->needs() == GradientNeed::kSharedParameters);
  REQUIRE(imtl->parameters().empty());
  SECTION("orthogonal unit gradients: α = (1/2, 1/2)") {
    // D = g_a − g_b = (1,−1) = U; D Uᵀ = 2, g_a Uᵀ = 1 → α_b = 1/2.
    FixedGradients g({{1, 0}, {0, 1}});
    const StepOutput out = stepWith(*imtl, {1, 1}, g);
    REQUIRE(out.kind == StepOutput::Kind::kSharedGradient);
    const auto d = directionOf(out);
    REQUIRE(d[0] == Approx(0.5));
    REQUIRE(d[1] == Approx(0.5));
    REQUIRE(weightsOf(out) == std::vector<double>{1.0, 1.0});
  }
  SECTION("a dominant gradient (10,0), (0,1)") {
    // D = (10,−1), U = (1,−1): D Uᵀ = 11, g_a Uᵀ = 10 → α = (1/11, 10/11), d = (10/11, 10/11).
    FixedGradients g({{10, 0}, {0, 1}});
    const StepOutput out = stepWith(*imtl, {1, 1}, g);
    const auto d = directionOf(out);
    REQUIRE(d[0] == Approx(10.0 / 11.0));
    REQUIRE(d[1] == Approx(10.0 / 11.0));
    REQUIRE(out.diagnostics[0] == Approx(1.0 / 11.0));
    REQUIRE(out.diagnostics[1] == Approx(10.0 / 11.0));
  }
  SECTION("opposed gradients: α = (1/2, 1/2), d = 0") {
    // D = (2,0), U = (2,0): D Uᵀ = 4, g_a Uᵀ = 2 → α_b = 1/2.
    FixedGradients g({{1, 0}, {-1, 0}});
    const auto d = directionOf(stepWith(*imtl, {1, 1}, g));
    REQUIRE(d[0] == Approx(0.0).margin(1e-12));
    REQUIRE(d[1] == Approx(0.0).margin(1e-12));
  }
}

TEST_CASE("imtl: equal projections on all unit gradients, and scale invariance of the direction",
          "[strategy][imtl]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  auto imtl = attached("{name: imtl, mode: gradient}", tasks);
  const std::vector<std::vector<double>> rows{{1, 0, 0, 1}, {1, 2, 0, -1}, {0, 1, 3, 0.5}};
  FixedGradients g(rows);
  const StepOutput out = stepWith(*imtl, {1, 1, 1}, g);
  const auto d = directionOf(out);
  std::vector<double> projections;
  for (const auto& row : rows) {
    double dot = 0.0, norm = 0.0;
    for (std::size_t k = 0; k < row.size(); ++k) {
      dot += d[k] * row[k];
      norm += row[k] * row[k];
    }
    projections.push_back(dot / std::sqrt(norm));
  }
  REQUIRE(projections[0] > 0.0);
  REQUIRE(projections[1] == Approx(projections[0]));
  REQUIRE(projections[2] == Approx(projections[0]));
  REQUIRE(out.diagnostics[0] + out.diagnostics[1] + out.diagnostics[2] == Approx(1.0));

  // Scaling the task gradients by (2, 0.1, 5) changes |d| but not its direction.
  const std::vector<double> factors{2.0, 0.1, 5.0};
  std::vector<std::vector<double>> scaled = rows;
  for (std::size_t i = 0; i < 3; ++i) {
    for (double& v : scaled[i]) v *= factors[i];
  }
  FixedGradients h(scaled);
  const auto e = directionOf(stepWith(*imtl, {1, 1, 1}, h));
  double dn = 0.0, en = 0.0, de = 0.0;
  for (std::size_t k = 0; k < d.size(); ++k) {
    dn += d[k] * d[k];
    en += e[k] * e[k];
    de += d[k] * e[k];
  }
  REQUIRE(de / std::sqrt(dn * en) == Approx(1.0).epsilon(1e-10));
  REQUIRE(std::sqrt(en) != Approx(std::sqrt(dn)));  // the length does change
}

TEST_CASE("imtl: hybrid with learned loss scales", "[strategy][imtl][state]") {
  const auto tasks = makeTasks({"a", "b"});
  auto imtl = attached("{name: imtl}", tasks);  // hybrid by default
  REQUIRE(imtl->parameters().size() == 1);
  {
    torch::NoGradGuard noGrad;
    imtl->parameters()[0][1] = std::log(2.0);
  }
  // s = (0, ln 2): scaled gradients e^s g = (1,0) and 2·(0,0.5) = (0,1), α = (1/2,1/2);
  // d = Σ α_i e^{s_i} g_i = 0.5·(1,0) + 1·(0,0.5) = (0.5, 0.5).
  FixedGradients g({{1, 0}, {0, 0.5}});
  const StepOutput out = stepWith(*imtl, {2, 3}, g);
  const auto d = directionOf(out);
  REQUIRE(d[0] == Approx(0.5));
  REQUIRE(d[1] == Approx(0.5));
  const auto w = weightsOf(out);  // e^s: the heads get ∇(e^{s_i} L_i)
  REQUIRE(w[0] == Approx(1.0));
  REQUIRE(w[1] == Approx(2.0));
  // ∂/∂s_i (e^{s_i} L_i − s_i) = (1·2 − 1, 2·3 − 1) = (1, 5).
  const torch::Tensor grad = imtl->parameters()[0].grad();
  REQUIRE(grad[0].item<double>() == Approx(1.0));
  REQUIRE(grad[1].item<double>() == Approx(5.0));

  auto restored = attached("{name: imtl}", tasks);
  restored->loadState(imtl->state());
  REQUIRE(weightsOf(stepWith(*restored, {2, 3}, g))[1] == Approx(2.0));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: imtl, mode: loss}"), tasks),
                      Catch::Contains("'loss' is not one of: gradient, hybrid"));
}

TEST_CASE("imtl: representation gradients", "[strategy][imtl]") {
  const auto tasks = makeTasks({"a", "b"});
  auto imtl = attached("{name: imtl, mode: gradient, gradients: representation}", tasks);
  REQUIRE(imtl->needs() == GradientNeed::kRepresentation);
  FixedGradientSource source(torch::zeros({2, 2}, torch::kFloat64), {},
                             torch::tensor({10.0, 0.0, 0.0, 1.0}, torch::kFloat64).view({2, 2}));
  const StepOutput out = stepWith(*imtl, {1, 1}, source);
  REQUIRE(out.kind == StepOutput::Kind::kRepresentationGradient);
  REQUIRE(directionOf(out)[0] == Approx(10.0 / 11.0));
}
