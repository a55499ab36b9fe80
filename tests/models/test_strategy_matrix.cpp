// Every registered strategy on every built-in architecture: a tiny
// configuration (gradnorm_toy, 8 inputs, the architectures of
// tests/support/architectures.h, < 400 parameters), three steps each.
// Refusals must be exactly the table below. With FULCRUM_MATRIX_SUBSET set
// (tests/check_sanitizers.sh) only the first strategy of each gradient need
// trains on each architecture; every refusal is still checked.
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
#include "tests/support/architectures.h"
#include "tests/support/memory_log.h"

using namespace fulcrum;

namespace {

/// What each architecture cannot give, so that exactly the strategies
/// needing it are refused: soft sharing shares nothing (no shared
/// parameters, no features, no last shared layer); a cascade's towers sit
/// between its trunk and the losses, and mtan's attended features are each
/// task's own (no features); the others have everything.
const std::map<std::string, std::set<GradientNeed>> kRefused = {
    {"soft_sharing",
     {GradientNeed::kRepresentation, GradientNeed::kLastSharedLayer,
      GradientNeed::kSharedParameters}},
    {"cascade", {GradientNeed::kRepresentation}},
    {"mtan", {GradientNeed::kRepresentation}},
};

/// Two regression tasks on 8 inputs, or (`binary`) the two stages of a CSV funnel.
ExperimentSpec matrixSpec(const testing::TinyArchitecture& model, const std::string& strategy) {
  static const testing::TemporaryFunnel funnel("matrix", 40, 8, 2);
  const std::string data = model.binaryTasks ? funnel.yaml : R"(
data: {kind: gradnorm_toy, sigmas: [1, 2], input_dim: 8, output_dim: 1,
       train_size: 24, val_size: 8, test_size: 8}
)";
  return parseExperiment(fmt::format(R"({}
model: {}
train: {{epochs: 1, batch_size: 8, max_steps_per_epoch: 3, log_gradients_every: 2,
        checkpoint_every: 0, optimizer: {{kind: adam, lr: 0.01}}}}
strategy: {}
)",
                                     data, model.model, strategy),
                         "matrix.yaml");
}

/// Trains `model` with `strategy` on `spec` (three steps): completed, with finite losses.
void requireThreeFiniteSteps(const ExperimentSpec& spec, const MultiTaskData& data,
                             MultiTaskModel& model, Strategy& strategy) {
  testing::MemoryLog log;
  const TrialResult result = train(spec, data, model, strategy, log, {});
  REQUIRE(result.status == "completed");
  REQUIRE(log.steps.size() == 3);
  for (const auto& step : log.steps) {
    for (double loss : step.losses) CHECK(std::isfinite(loss));
  }
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
  const bool subset = std::getenv("FULCRUM_MATRIX_SUBSET") != nullptr;
  std::map<std::string, std::set<GradientNeed>> trained;
  for (const auto& architecture : testing::tinyArchitectures()) {
    for (const auto& strategy : strategies) {
      INFO(architecture.model << " × " << strategy);
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
      // Under the sanitizers every refusal is checked but only the first
      // strategy of each gradient need trains.
      if (subset && !trained[plan.architecture].insert(instance->needs()).second) continue;
      const MultiTaskData data = loadData(spec);
      const auto model = makeModel(spec, data.inputShape);
      std::vector<torch::Tensor> before;
      for (const auto& p : model->sharedParameters()) before.push_back(p.detach().clone());
      requireThreeFiniteSteps(spec, data, *model, *instance);
      double moved = 0.0;
      const auto after = model->sharedParameters();
      for (std::size_t k = 0; k < after.size(); ++k)
        moved += (after[k].detach() - before[k]).abs().sum().item<double>();
      CHECK((after.empty() || moved > 0.0));
    }
  }
}

TEST_CASE("every strategy trains on dense tasks: segnet and conv heads on dense_fashion",
          "[models][matrix][dense]") {
  // 16×16 images, a one-stage segnet of 4 filters (about 1,000 parameters),
  // segmentation, depth and normals; three steps per strategy, as above.
  registerFileDatasets();
  auto spec = [](const std::string& strategy) {
    return parseExperiment(fmt::format(R"(
data: {{kind: dense_fashion, size: 16, items: 1, min_side: 8, max_side: 12,
       train_size: 24, val_size: 4, test_size: 4}}
model: {{trunk: {{kind: segnet, filters: [4]}}}}
train: {{epochs: 1, batch_size: 8, max_steps_per_epoch: 3, log_gradients_every: 2,
        checkpoint_every: 0, optimizer: {{kind: adam, lr: 0.01}}}}
strategy: {}
)",
                                       strategy),
                           "dense_matrix.yaml");
  };
  const MultiTaskData data = loadData(spec("{name: fixed}"));
  std::vector<std::string> strategies;
  for (const auto& row : strategyTable())
    strategies.push_back(fmt::format("{{name: {}}}", row.name));
  for (const char* name : {"mgda", "pcgrad", "cagrad", "nash_mtl"})
    strategies.push_back(fmt::format("{{name: {}, gradients: representation}}", name));
  const bool subset = std::getenv("FULCRUM_MATRIX_SUBSET") != nullptr;
  std::set<GradientNeed> trained;
  for (const auto& strategy : strategies) {
    INFO("segnet × " << strategy);
    const ExperimentSpec experiment = spec(strategy);
    const ModelPlan plan = planModel(experiment);
    auto instance = makeStrategy(experiment.strategy, experiment.tasks);
    checkStrategyFits(experiment, *instance, plan);  // hps on segnet has everything
    if (subset && !trained.insert(instance->needs()).second) continue;
    const auto model = makeModel(experiment, data.inputShape);
    requireThreeFiniteSteps(experiment, data, *model, *instance);
  }
}
