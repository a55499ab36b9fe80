#include "models/mlp.h"

#include <torch/torch.h>

namespace fulcrum {

namespace {

std::vector<int64_t> trunkHidden(const ConfigNode& options) {
  std::vector<int64_t> hidden =
      options.getIntList("hidden", {100, 100, 100, 100}, 1, kMaxModelWidth);
  if (hidden.empty()) options.fail("hidden", "an mlp trunk needs at least one layer");
  return hidden;
}

}  // namespace

TrunkInfo mlpTrunk() {
  TrunkInfo row;
  row.name = "mlp";
  row.description = "Linear + ReLU per width of `hidden` (inputs flattened)";
  row.check = [](const ConfigNode& options, const std::vector<int64_t>&) { trunkHidden(options); };
  row.build = [](const ConfigNode& options, const std::vector<int64_t>& inputShape) {
    TrunkParts parts;
    parts.layers = torch::nn::Sequential();
    if (inputShape.size() != 1) parts.layers->push_back(torch::nn::Flatten());
    int64_t in = exampleElements(inputShape);
    for (int64_t out : trunkHidden(options)) {
      parts.lastLinear = torch::nn::Linear(in, out);
      parts.layers->push_back(parts.lastLinear);
      parts.layers->push_back(torch::nn::ReLU());
      parts.stageEnds.push_back(parts.layers->size() - 1);
      in = out;
    }
    parts.width = in;
    return parts;
  };
  row.size = [](const ConfigNode& options, const std::vector<int64_t>& inputShape) {
    ModelSize size;
    auto in = static_cast<double>(exampleElements(inputShape));
    for (int64_t out : trunkHidden(options)) {
      size.parameters += in * static_cast<double>(out) + static_cast<double>(out);
      size.activationWidth += static_cast<double>(out);
      in = static_cast<double>(out);
      size.width = out;
      ++size.stages;
    }
    return size;
  };
  return row;
}

}  // namespace fulcrum
