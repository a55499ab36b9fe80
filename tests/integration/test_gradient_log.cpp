// Gradient diagnostics on the real trainer: what GradientRecord promises,
// checked through identities that tie its numbers to the update applied.
#include <catch2/catch.hpp>

#include <cmath>

#include <torch/torch.h>

#include "tests/support/train_experiment.h"

using namespace fulcrum;
using namespace fulcrum::testing;

namespace {

MemoryLog run(const std::vector<std::string>& overrides) {
  // Three regression tasks of the GradNorm toy, plain SGD: the parameter
  // change of a step is exactly -lr times the gradient the optimizer gets.
  const char* yaml = R"(
seed: 3
data: {kind: gradnorm_toy, tasks: 3, train_size: 200, val_size: 20, test_size: 20}
model: {trunk: {kind: mlp, hidden: [16, 16]}}
train: {epochs: 1, batch_size: 20, log_gradients_every: 3, optimizer: {kind: sgd, lr: 0.01}}
strategy: {name: fixed, weights: [1.0, 2.0, 0.5]}
)";
  return trainExperiment(yaml, overrides, "gradients.yaml");
}

}  // namespace

TEST_CASE("gradient log: every k-th step, with the norms and cosines of the applied update",
          "[integration][gradients]") {
  const MemoryLog log = run({});
  INFO(log.error);
  REQUIRE(log.status == "completed");
  REQUIRE(log.description.gradientInterval == 3);
  REQUIRE(log.steps.size() == 10);
  REQUIRE(log.gradientRecords.size() == 4);  // steps 0, 3, 6, 9
  const std::vector<double> a = {1.0, 2.0, 0.5};
  for (std::size_t k = 0; k < log.gradientRecords.size(); ++k) {
    const GradientRecord& r = log.gradientRecords[k];
    CHECK(r.step == static_cast<int64_t>(3 * k));
    CHECK(r.epoch == 0);
    REQUIRE(r.norms.size() == 3);
    REQUIRE(r.cosines.size() == 3);  // (0,1), (0,2), (1,2)
    for (double n : r.norms) CHECK(n > 0.0);
    for (double c : r.cosines) CHECK(std::abs(c) <= 1.0 + 1e-12);
    // Fixed weights apply d = Σ a_i g_i to the trunk, so
    // ‖d‖² = Σ a_i² ‖g_i‖² + 2 Σ_{i<j} a_i a_j ‖g_i‖ ‖g_j‖ cos(g_i, g_j).
    const auto& n = r.norms;
    const auto& c = r.cosines;
    double expected = 0.0;
    for (int i = 0; i < 3; ++i) expected += a[i] * a[i] * n[i] * n[i];
    expected += 2.0 * (a[0] * a[1] * n[0] * n[1] * c[0] + a[0] * a[2] * n[0] * n[2] * c[1] +
                       a[1] * a[2] * n[1] * n[2] * c[2]);
    CHECK(r.directionNorm == Approx(std::sqrt(expected)).epsilon(1e-4));
    // SGD without momentum or decay: θ' − θ = −lr d.
    CHECK(r.stepNorm == Approx(0.01 * r.directionNorm).epsilon(1e-4));
  }
}

TEST_CASE("gradient log: logging changes nothing of the training", "[integration][gradients]") {
  const MemoryLog logged = run({});
  const MemoryLog silent = run({"train.log_gradients_every=0"});
  REQUIRE(silent.gradientRecords.empty());
  REQUIRE(silent.description.gradientInterval == 0);
  REQUIRE(logged.steps.size() == silent.steps.size());
  for (std::size_t s = 0; s < logged.steps.size(); ++s) {
    CHECK(logged.steps[s].losses == silent.steps[s].losses);  // bit for bit
  }
}

TEST_CASE("gradient log: a gradient method's own matrix gives the same numbers", "[integration][gradients]") {
  // MGDA asks for the per-task gradients itself and the log reuses that
  // matrix. Same seed, batch and initial model as fixed weights: the first
  // step's norms and cosines agree; its own direction is what SGD applies.
  const MemoryLog fixed = run({});
  const MemoryLog mgda = run({"strategy={name: mgda}"});
  REQUIRE(mgda.status == "completed");
  REQUIRE(mgda.gradientRecords.size() == 4);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(mgda.gradientRecords[0].norms[i] == Approx(fixed.gradientRecords[0].norms[i]).epsilon(1e-6));
    CHECK(mgda.gradientRecords[0].cosines[i] == Approx(fixed.gradientRecords[0].cosines[i]).epsilon(1e-6));
  }
  for (const GradientRecord& r : mgda.gradientRecords) {
    CHECK(r.stepNorm == Approx(0.01 * r.directionNorm).epsilon(1e-4));
  }
}
