// Tasks without a label in a batch: every registered strategy gives a finite
// update that leaves the absent task out (StepInput::present).
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "strategies/registry.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;

namespace {

// Rows for tasks a, b, c; b is absent: its loss is an exact zero whose
// gradient is zero, as the trainer gives it.
const std::vector<std::vector<double>> kRows = {{1.0, 2.0, 0.0, -1.0}, {0.0, 0.0, 0.0, 0.0}, {-1.0, 0.5, 2.0, 1.0}};
const std::vector<std::vector<double>> kPresentRows = {kRows[0], kRows[2]};
const std::vector<double> kLosses = {0.7, 0.0, 1.3};
const std::vector<double> kPresentLosses = {0.7, 1.3};

bool allFinite(const std::vector<double>& values) {
  for (double v : values) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

StepOutput stepMasked(Strategy& strategy, const std::vector<torch::Tensor>& losses, GradientSource& source,
                      std::vector<bool> present, int64_t step = 0) {
  return strategy.step(StepInput{losses, source, step, 0, std::move(present)});
}

}  // namespace

TEST_CASE("every strategy: an absent task gets no loss and no gradient, the update is finite",
          "[strategy][absent_tasks]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  const auto presentTasks = makeTasks({"a", "c"});
  for (const auto& row : strategyTable()) {
    DYNAMIC_SECTION(row.name) {
      auto strategy = attached("{name: " + row.name + "}", tasks);
      FixedGradients g(kRows);
      // Several steps, as stateful strategies (Nash-MTL, GradVac, FAMO) keep state between them.
      for (int64_t step = 0; step < 3; ++step) {
        const std::vector<torch::Tensor> losses = makeLosses(kLosses);
        const StepOutput out = stepMasked(*strategy, losses, g, {true, false, true}, step);
        INFO("step " << step);
        REQUIRE(allFinite(weightsOf(out)));
        if (out.kind == StepOutput::Kind::kObjective) {
          REQUIRE(std::isfinite(out.objective.item<double>()));
          out.objective.backward();
          // What the absent task's loss would pass on is multiplied by its
          // gradient, zero; the present tasks' derivatives must be finite.
          REQUIRE(std::isfinite(losses[0].grad().item<double>()));
          REQUIRE(std::isfinite(losses[2].grad().item<double>()));
          for (const auto& p : strategy->parameters()) {
            // e.g. s_b of uncertainty: not updated (gradients accumulate over the steps)
            if (p.grad().defined()) REQUIRE(p.grad()[1].item<double>() == 0.0);
          }
        } else {
          REQUIRE(allFinite(directionOf(out)));
        }
        if (!row.make(yamlNode("{name: " + row.name + "}"), tasks)->handlesAbsentTasks()) {
          REQUIRE(weightsOf(out)[1] == 0.0);
        }
        // As the trainer does (FAMO): the losses after the optimizer step, the absent one 0.
        if (strategy->wantsLossesAfterStep()) strategy->afterStep({0.6, 0.0, 1.2});
      }
    }
  }
}

TEST_CASE("wrapped strategies: with a task absent, the update is the strategy's on the present tasks",
          "[strategy][absent_tasks]") {
  const auto tasks = makeTasks({"a", "b", "c"});
  const auto presentTasks = makeTasks({"a", "c"});
  for (const auto& row : strategyTable()) {
    const std::string yaml = "{name: " + row.name + "}";
    if (row.make(yamlNode(yaml), tasks)->handlesAbsentTasks()) continue;
    DYNAMIC_SECTION(row.name) {
      auto full = attached(yaml, tasks);
      auto reference = attached(yaml, presentTasks);
      FixedGradients g(kRows), gPresent(kPresentRows);
      const std::vector<torch::Tensor> losses = makeLosses(kLosses);
      const StepOutput masked = stepMasked(*full, losses, g, {true, false, true});
      const StepOutput expected = stepWith(*reference, kPresentLosses, gPresent);
      REQUIRE(masked.kind == expected.kind);
      const std::vector<double> w = weightsOf(masked), we = weightsOf(expected);
      REQUIRE(w[0] == Approx(we[0]).margin(1e-12));
      REQUIRE(w[1] == 0.0);
      REQUIRE(w[2] == Approx(we[1]).margin(1e-12));
      if (masked.kind == StepOutput::Kind::kObjective) {
        REQUIRE(masked.objective.item<double>() == Approx(expected.objective.item<double>()).margin(1e-12));
      } else {
        const std::vector<double> d = directionOf(masked), de = directionOf(expected);
        REQUIRE(d.size() == de.size());
        for (std::size_t k = 0; k < d.size(); ++k) REQUIRE(d[k] == Approx(de[k]).margin(1e-12));
      }
    }
  }
}

TEST_CASE("fixed: Σ a_i L_i leaves an absent task out; uncertainty drops its whole term",
          "[strategy][absent_tasks]") {
  const auto tasks = makeTasks({"a", "b"});
  FixedGradients none;
  {
    auto fixed = attached("{name: fixed, weights: [0.25, 0.75]}", tasks);
    const std::vector<torch::Tensor> losses = makeLosses({2.0, 0.0});
    const StepOutput out = stepMasked(*fixed, losses, none, {true, false});
    REQUIRE(out.objective.item<double>() == Approx(0.5));  // 0.25 · 2
  }
  {
    // ½e^{-s}L + ½s with s = 0 (regression form): task a only: ½·2 + 0 = 1.
    auto uncertainty = attached("{name: uncertainty}", tasks);
    const std::vector<torch::Tensor> losses = makeLosses({2.0, 0.0});
    const StepOutput out = stepMasked(*uncertainty, losses, none, {true, false});
    REQUIRE(out.objective.item<double>() == Approx(1.0));
    out.objective.backward();
    const torch::Tensor grad = uncertainty->parameters()[0].grad();
    REQUIRE(grad[0].item<double>() == Approx(-0.5 * 2.0 + 0.5));  // ∂/∂s: −½e^{-s}L + ½
    REQUIRE(grad[1].item<double>() == 0.0);
  }
}

TEST_CASE("no task present: a zero update", "[strategy][absent_tasks]") {
  const auto tasks = makeTasks({"a", "b"});
  auto mgda = attached("{name: mgda}", tasks);
  FixedGradients g({{0.0, 0.0}, {0.0, 0.0}});
  const std::vector<torch::Tensor> losses = makeLosses({0.0, 0.0});
  const StepOutput out = stepMasked(*mgda, losses, g, {false, false});
  REQUIRE(out.kind == StepOutput::Kind::kObjective);
  REQUIRE(out.objective.item<double>() == 0.0);
  REQUIRE(weightsOf(out) == std::vector<double>{0.0, 0.0});
}
