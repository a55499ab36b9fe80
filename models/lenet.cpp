#include "models/lenet.h"

#include <fmt/format.h>
#include <torch/torch.h>

namespace fulcrum {

namespace {

void checkShape(const ConfigNode& options, const std::vector<int64_t>& inputShape) {
  if (inputShape.empty() || inputShape == std::vector<int64_t>{1, 36, 36}) return;
  options.fail("kind", fmt::format("the lenet trunk takes 1×36×36 images (data.kind: "
                                   "multi_fashion), not inputs of shape [{}]; use kind: mlp",
                                   fmt::join(inputShape, ", ")));
}

}  // namespace

TrunkInfo lenetTrunk() {
  namespace nn = torch::nn;
  TrunkInfo row;
  row.name = "lenet";
  row.description = "LeNet on 1×36×36 images: two conv + pool stages, fc 500→50";
  row.check = checkShape;
  // planTrunk runs `check` with the data's shape before every build.
  row.build = [](const ConfigNode&, const std::vector<int64_t>&) {
    TrunkParts parts;
    parts.layers = nn::Sequential();
    parts.layers->push_back(nn::Conv2d(nn::Conv2dOptions(1, 10, 9)));
    parts.layers->push_back(nn::ReLU());
    parts.layers->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    parts.layers->push_back(nn::Conv2d(nn::Conv2dOptions(10, 20, 5)));
    parts.layers->push_back(nn::ReLU());
    parts.layers->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    parts.layers->push_back(nn::Flatten());
    parts.lastLinear = nn::Linear(20 * 5 * 5, 50);
    parts.layers->push_back(parts.lastLinear);
    parts.layers->push_back(nn::ReLU());
    parts.stageEnds = {2, 5, 8};  // after each conv stage's pooling, after the fc
    parts.width = 50;
    return parts;
  };
  row.size = [](const ConfigNode&, const std::vector<int64_t>&) {
    ModelSize size;
    size.parameters = 10.0 * 81 + 10 + 20.0 * 10 * 25 + 20 + 500.0 * 50 + 50;
    size.activationWidth = 10.0 * 28 * 28 + 20.0 * 10 * 10 + 50;
    size.width = 50;
    size.stages = 3;
    return size;
  };
  return row;
}

}  // namespace fulcrum
