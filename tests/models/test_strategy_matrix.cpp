// Every registered strategy on every built-in architecture: a tiny
// configuration (gradnorm_toy, 8 inputs, experts Linear(8,8)+ReLU, < 400
// parameters), three steps each. Refusals must be exactly the table below.
#include <fmt/format.h>
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

#include "framework/experiment.h"
#include "framework/trainer.h"
#include "models/registry.h"
#include "strategies/registry.h"
#include "tests/support/memory_log.h"

using namespace fulcrum;

namespace {

const std::vector<std::string> kArchitectures = {
    "{architecture: hps, trunk: {kind: mlp, hidden: [8]}}",
    "{architecture: mmoe, experts: 2, trunk: {kind: mlp, hidden: [8]}}",
    "{architecture: cgc, shared_experts: 1, task_experts: 1, trunk: {kind: mlp, hidden: [8]}}",
    "{architecture: ple, levels: 2, trunk: {kind: mlp, hidden: [8]}}",
    "{architecture: dselect_k, experts: 3, k: 2, trunk: {kind: mlp, hidden: [8]}}",
    "{architecture: cross_stitch, trunk: {kind: mlp, hidden: [8]}}",
    "{architecture: soft_sharing, penalty: 0.01, trunk: {kind: mlp, hidden: [8]}}",
};

/// What each architecture cannot give, so that exactly the strategies
/// needing it are refused: soft sharing shares nothing (no shared
/// parameters, no features, no last shared layer); the others have everything.
const std::map<std::string, std::set<GradientNeed>> kRefused = {
    {"soft_sharing",
     {GradientNeed::kRepresentation, GradientNeed::kLastSharedLayer,
      GradientNeed::kSharedParameters}},
};

ExperimentSpec matrixSpec(const std::string& model, const std::string& strategy) {
  return parseExperiment(fmt::format(R"(
data: {{kind: gradnorm_toy, sigmas: [1, 2], input_dim: 8, output_dim: 1,
       train_size: 24, val_size: 8, test_size: 8}}
model: {}
train: {{epochs: 1, batch_size: 8, max_steps_per_epoch: 3, log_gradients_every: 2,
        checkpoint_every: 0, optimizer: {{kind: adam, lr: 0.01}}}}
strategy: {}
)",
                                     model, strategy),
                         "matrix.yaml");
}

}  // namespace

TEST_CASE("every strategy trains on every architecture, or is refused as the table says",
          "[models][matrix]") {
  std::vector<std::string> strategies;
  for (const auto& row : strategyTable()) {
    strategies.push_back(fmt::format("{{name: {}}}", row.name));
  }
  // Representation gradients act on the features: the experts' outputs for MMoE and CGC.
  for (const char* name : {"mgda", "pcgrad", "cagrad", "imtl", "nash_mtl", "fairgrad",
                           "aligned_mtl", "upgrad", "gradvac"}) {
    strategies.push_back(fmt::format("{{name: {}, gradients: representation}}", name));
  }
  for (const auto& architecture : kArchitectures) {
    for (const auto& strategy : strategies) {
      INFO(architecture << " × " << strategy);
      const ExperimentSpec spec = matrixSpec(architecture, strategy);
      const ModelPlan plan = planModel(spec);
      auto instance = makeStrategy(spec.strategy, spec.tasks);
      bool refused = false;
      try {
        checkStrategyFits(spec, *instance, plan);
      } catch (const ConfigError&) {
        refused = true;
      }
      const auto row = kRefused.find(plan.architecture);
      CHECK(refused == (row != kRefused.end() && row->second.count(instance->needs()) == 1));
      if (refused) continue;
      const MultiTaskData data = loadData(spec);
      const auto model = makeModel(spec, data.inputShape);
      std::vector<torch::Tensor> before;
      for (const auto& p : model->sharedParameters()) before.push_back(p.detach().clone());
      testing::MemoryLog log;
      const TrialResult result = train(spec, data, *model, *instance, log, {});
      REQUIRE(result.status == "completed");
      REQUIRE(log.steps.size() == 3);
      for (const auto& step : log.steps) {
        for (double loss : step.losses) CHECK(std::isfinite(loss));
      }
      double moved = 0.0;
      const auto after = model->sharedParameters();
      for (std::size_t k = 0; k < after.size(); ++k)
        moved += (after[k].detach() - before[k]).abs().sum().item<double>();
      CHECK((after.empty() || moved > 0.0));
    }
  }
}
