// Dense prediction on the model contract: the segnet trunk and the conv
// heads on the offline dense benchmark (parameter counts by hand, shapes),
// and where spatial trunks and heads are refused.
#include <fmt/format.h>
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "datasets/file_datasets.h"
#include "framework/experiment.h"
#include "models/registry.h"

using namespace fulcrum;
using Catch::Matchers::Contains;

namespace {

/// dense_fashion at `size`² with one item per image, and the `model:` mapping `model`.
ExperimentSpec denseSpec(const std::string& model, int64_t size = 16,
                         const std::string& strategy = "{name: fixed}") {
  registerFileDatasets();
  return parseExperiment(fmt::format(R"(
data: {{kind: dense_fashion, size: {}, items: 1, min_side: 8, max_side: 12,
       train_size: 8, val_size: 4, test_size: 4}}
model: {}
strategy: {}
)",
                                     size, model, strategy),
                         "dense.yaml");
}

ExperimentSpec flatSpec(const std::string& model) {
  return parseExperiment(fmt::format(R"(
data: {{kind: gradnorm_toy, sigmas: [1, 2], input_dim: 8, output_dim: 1,
       train_size: 8, val_size: 4, test_size: 4}}
model: {}
strategy: {{name: fixed}}
)",
                                     model),
                         "flat.yaml");
}

int64_t parameterCount(const MultiTaskModel& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return n;
}

}  // namespace

TEST_CASE("segnet + conv heads: parameters counted by hand, per-pixel outputs", "[models][dense]") {
  const ExperimentSpec spec = denseSpec("{trunk: {kind: segnet, filters: [4, 8]}}");
  // conv k×k: 9·in·out + out, BatchNorm 2·out. Encoder: 1→4, 4→4 (48 + 156),
  // 4→8, 8→8 (312 + 600); decoder: 8→4, 4→4 (300 + 156), 4→4, 4→4 (156 + 156):
  // 1884. Heads conv3×3 4→4 (148) and conv1×1 4→11, 4→1, 4→3 (55, 5, 15): 519.
  const ModelPlan plan = planModel(spec);
  CHECK(plan.denseOutputs);
  // The row's own count (the memory check's, once the data's shape is known).
  for (const auto& row : trunkTable()) {
    if (row.name == "segnet")
      CHECK(row.size(spec.model.child("trunk"), {1, 16, 16}).parameters == 1884);
  }
  CHECK(plan.provides.lastSharedLayer);
  const MultiTaskData data = loadData(spec);
  const auto model = makeModel(spec, data.inputShape);
  CHECK(parameterCount(*model) == 2403);
  const ModelOutput out = model->forward({data.train.inputs.narrow(0, 0, 2)});
  CHECK(out.outputs[0].sizes() == torch::IntArrayRef({2, 11, 16, 16}));
  CHECK(out.outputs[1].sizes() == torch::IntArrayRef({2, 1, 16, 16}));
  CHECK(out.outputs[2].sizes() == torch::IntArrayRef({2, 3, 16, 16}));
  REQUIRE(out.features.size() == 1);
  CHECK(out.features[0].sizes() == torch::IntArrayRef({2, 4, 16, 16}));
  // GradNorm's W: the decoder's last convolution, 4 → 4.
  const auto last = model->lastSharedLayer();
  REQUIRE(last.size() == 2);
  CHECK(last[0].sizes() == torch::IntArrayRef({4, 4, 3, 3}));
  CHECK(last[1].sizes() == torch::IntArrayRef({4}));
  // Sides that do not halve evenly are unpooled to their own size: 18 → 9 → 4.
  const ExperimentSpec odd = denseSpec("{trunk: {kind: segnet, filters: [4, 8]}}", 18);
  const MultiTaskData oddData = loadData(odd);
  const ModelOutput oddOut = makeModel(odd, oddData.inputShape)->forward({oddData.train.inputs});
  CHECK(oddOut.outputs[0].sizes() == torch::IntArrayRef({8, 11, 18, 18}));
}

TEST_CASE("spatial trunks and heads only where the tasks are dense, and only on hps",
          "[models][dense][config]") {
  CHECK_THROWS_WITH(planModel(denseSpec("{trunk: {kind: mlp}, head: {kind: linear}}")),
                    Contains("model.head.kind") &&
                        Contains("task 'segmentation' is a segmentation task (per pixel)"));
  CHECK_THROWS_WITH(planModel(denseSpec("{trunk: {kind: segnet}, head: {kind: linear}}")),
                    Contains("model.head.kind: trunk 'segnet' yields feature maps"));
  CHECK_THROWS_WITH(planModel(denseSpec("{architecture: mmoe, trunk: {kind: segnet}}")),
                    Contains("model.trunk.kind: trunk 'segnet' works on feature maps") &&
                        Contains("only architecture hps"));
  CHECK_THROWS_WITH(planModel(flatSpec("{trunk: {kind: segnet}, head: {kind: conv}}")),
                    Contains("the segnet trunk takes C × H × W images"));
  const ExperimentSpec images = parseExperiment(
      "data: {kind: multi_fashion}\nmodel: {trunk: {kind: segnet}}\nstrategy: {name: fixed}\n",
      "images.yaml");
  CHECK_THROWS_WITH(planModel(images),
                    Contains("model.trunk.kind: trunk 'segnet' yields feature maps, for dense "
                             "tasks") &&
                        Contains("predict one value per example"));
  CHECK_THROWS_WITH(planModel(flatSpec("{trunk: {kind: mlp}, head: {kind: conv}}")),
                    Contains("model.head.kind: head 'conv' works on feature maps"));
  // The data's shape is known once it is loaded (a registered kind), before the model is built.
  const ExperimentSpec deep = denseSpec("{trunk: {kind: segnet, filters: [4, 4, 4, 4, 4]}}");
  CHECK_THROWS_WITH(makeModel(deep, {1, 16, 16}),
                    Contains("model.trunk.kind") && Contains("H and W at least 32"));
  // The defaults for dense tasks: segnet and conv.
  const ModelPlan plan = planModel(denseSpec("{trunk: {filters: [4]}}"));
  CHECK(plan.denseOutputs);
}

TEST_CASE("lenet on any C × H × W image: the fc's inputs follow the size", "[models][lenet]") {
  const ExperimentSpec spec = parseExperiment(
      "data: {kind: multi_fashion}\nmodel: {trunk: {kind: lenet}}\nstrategy: {name: fixed}\n",
      "images.yaml");
  const ConfigNode options = spec.model.child("trunk");
  for (const auto& row : trunkTable()) {
    if (row.name != "lenet") continue;
    // conv 3→10 k9 (2,440), conv 10→20 k5 (5,020); 64 → 56 → 28 → 24 → 12:
    // fc 20·12·12 = 2,880 → 50 (144,050). On 1×36×36 the papers' 30,890.
    CHECK(row.size(options, {3, 64, 64}).parameters == 151510);
    CHECK(row.size(options, {1, 36, 36}).parameters == 30890);
    TrunkParts parts = row.build(options, {3, 64, 64});
    int64_t count = 0;
    for (const auto& p : parts.layers->parameters()) count += p.numel();
    CHECK(count == 151510);
    CHECK(parts.layers->forward(torch::zeros({2, 3, 64, 64})).sizes() ==
          torch::IntArrayRef({2, 50}));
    // 20 is the smallest side: 20 → 12 → 6 → 2 → 1.
    CHECK_NOTHROW(row.check(options, {1, 20, 20}));
    CHECK_THROWS_WITH(row.check(options, {1, 19, 40}), Contains("at least 20"));
  }
}
