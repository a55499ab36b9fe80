// The two-task landscape (framework/landscape.h): values and gradients by
// hand, the optimisation loop, the `landscape:` block's validation.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cmath>

#include "framework/landscape.h"

using namespace fulcrum;
using Catch::Matchers::Contains;

namespace {

const Point2 kUnit{1.0, 1.0};

/// Objective Σ_i L_i, or the direction ∇L_`only` when `only` ≥ 0; counts calls.
struct SumOrOne : Strategy {
  int only = -1;
  int afterCalls = 0;
  int epochEnds = 0;
  GradientNeed needs() const override {
    return only < 0 ? GradientNeed::kLosses : GradientNeed::kSharedParameters;
  }
  StepOutput step(const StepInput& input) override {
    StepOutput out;
    out.weights = torch::ones({2});
    if (only < 0) {
      out.objective = input.losses[0] + input.losses[1];
    } else {
      out.kind = StepOutput::Kind::kSharedGradient;
      out.direction = input.gradients.sharedParameters()[only].clone();
    }
    return out;
  }
  bool wantsLossesAfterStep() const override { return true; }
  void afterStep(const std::vector<double>& losses) override {
    REQUIRE(losses.size() == 2);
    ++afterCalls;
  }
  void onEpochEnd(const EpochStats& stats) override {
    REQUIRE(stats.meanTrainLosses.size() == 2);
    ++epochEnds;
  }
};

ConfigNode node(const std::string& yaml) { return ConfigNode(YAML::Load(yaml), "test.yaml", "landscape"); }

}  // namespace

TEST_CASE("landscape: the published minima and the balanced point", "[landscape]") {
  // L1's minimum at (7, -8.4345) is -19.989; the average's at (0, -8.3551)
  // has L1 = L2 = -15.092 (REFERENCES.md section 4).
  const LandscapeValue atTask1 = evaluateLandscape({7.0, -8.4345}, kUnit);
  CHECK(atTask1.loss[0] == Approx(-19.989).margin(1e-3));
  CHECK(atTask1.gradient[0][0] == Approx(0.0).margin(1e-9));
  const LandscapeValue balanced = evaluateLandscape({0.0, -8.3551}, kUnit);
  CHECK(balanced.loss[0] == Approx(-15.092).margin(1e-3));
  CHECK(balanced.loss[1] == Approx(-15.092).margin(1e-3));
  // Symmetric in x1 there: ∂L1/∂x1 = -∂L2/∂x1 = c2 (0 - 7)/5.
  CHECK(balanced.gradient[0][0] == Approx(-balanced.gradient[1][0]));
  CHECK(balanced.gradient[0][0] == Approx(-1.4 * std::tanh(8.3551 / 2)));
}

TEST_CASE("landscape: at the start (0, 0) the gradient passes the clamps", "[landscape]") {
  // c1 = c2 = 0 so both losses are 0; with autograd's clamp the gradients are
  // ∂L_i/∂x2 = 0.5 f_i(0,0) - 0.5 g_i(0,0), and ∂/∂x1 = 0.
  const double f1 = std::log(3.5) + 6.0;  // |0.5(-7) - tanh(0)| = 3.5
  const double f2 = std::log(3.5) + 6.0;  // |0.5(3) + 0 + 2| = 3.5
  const double g = (49.0 + 6.4) / 10.0 - 20.0;  // -14.46 for both
  const LandscapeValue value = evaluateLandscape({0.0, 0.0}, {0.1, 1.0});
  CHECK(value.loss[0] == 0.0);
  CHECK(value.loss[1] == 0.0);
  CHECK(value.gradient[0][0] == Approx(0.0).margin(1e-12));
  CHECK(value.gradient[0][1] == Approx(0.1 * (0.5 * f1 - 0.5 * g)));
  CHECK(value.gradient[1][1] == Approx(0.5 * f2 - 0.5 * g));
}

TEST_CASE("landscape: gradients match central differences", "[landscape]") {
  const Point2 scales{0.1, 1.0};
  for (const Point2& x : {Point2{-8.5, 7.5}, Point2{-8.5, 5.0}, Point2{9.0, 9.0}, Point2{10.0, -8.0},
                          Point2{3.0, -2.0}, Point2{-1.0, 0.7}}) {
    const LandscapeValue value = evaluateLandscape(x, scales);
    const double h = 1e-6;
    for (std::size_t k = 0; k < 2; ++k) {
      Point2 up = x, down = x;
      up[k] += h;
      down[k] -= h;
      const LandscapeValue a = evaluateLandscape(up, scales), b = evaluateLandscape(down, scales);
      for (std::size_t i = 0; i < 2; ++i) {
        INFO("x = (" << x[0] << ", " << x[1] << "), task " << i << ", coordinate " << k);
        CHECK(value.gradient[i][k] == Approx((a.loss[i] - b.loss[i]) / (2 * h)).epsilon(1e-5).margin(1e-7));
      }
    }
  }
}

TEST_CASE("landscape: one SGD step follows the strategy's update", "[landscape]") {
  LandscapeSpec spec = readLandscapeSpec(node("{steps: 2, log_every: 1, steps_per_epoch: 1, "
                                               "optimizer: {kind: sgd, lr: 0.01}}"));
  const Point2 start{3.0, -2.0};
  const LandscapeValue at = evaluateLandscape(start, spec.lossScales);

  SumOrOne sum;
  const LandscapeRun summed = runLandscape(sum, spec, start);
  REQUIRE(summed.status == "completed");
  REQUIRE(summed.steps == std::vector<int64_t>{0, 1});
  for (std::size_t k = 0; k < 2; ++k) {
    CHECK(summed.points[1][k] ==
          Approx(start[k] - 0.01 * (at.gradient[0][k] + at.gradient[1][k])).epsilon(1e-5));
  }
  CHECK(summed.losses[0][0] == Approx(at.loss[0]));
  CHECK(sum.afterCalls == 2);
  CHECK(sum.epochEnds == 2);

  SumOrOne first;
  first.only = 0;
  const LandscapeRun directed = runLandscape(first, spec, start);
  for (std::size_t k = 0; k < 2; ++k) {
    CHECK(directed.points[1][k] == Approx(start[k] - 0.01 * at.gradient[0][k]).epsilon(1e-5));
  }
}

TEST_CASE("landscape: the block is validated with its key path", "[landscape]") {
  const LandscapeSpec defaults = readLandscapeSpec(node("{}"));
  CHECK(defaults.starts.size() == 5);
  CHECK(defaults.steps == 35000);
  CHECK(defaults.lossOffsets == Point2{20.0, 20.0});
  CHECK(readLandscapeSpec(node("{loss_scales: [0.1, 1]}")).lossOffsets == Point2{2.0, 20.0});
  REQUIRE_THROWS_WITH(readLandscapeSpec(node("{starts: [[1, 2], [3]]}")),
                      Contains("landscape.starts[1]: expected a list of 2 numbers"));
  REQUIRE_THROWS_WITH(readLandscapeSpec(node("{starts: [[1, x]]}")),
                      Contains("landscape.starts[0][1]: expected a finite number"));
  REQUIRE_THROWS_WITH(readLandscapeSpec(node("{starts: []}")), Contains("landscape.starts: the list is empty"));
  REQUIRE_THROWS_WITH(readLandscapeSpec(node("{loss_scales: [1]}")),
                      Contains("landscape.loss_scales: must hold 2 numbers"));
  REQUIRE_THROWS_WITH(readLandscapeSpec(node("{stepz: 3}")), Contains("stepz"));
  REQUIRE_THROWS_WITH(readLandscapeSpec(node("{steps: 0}")), Contains("landscape.steps"));
}
