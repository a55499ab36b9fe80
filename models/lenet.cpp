#include "models/lenet.h"

#include <fmt/format.h>
#include <torch/torch.h>

namespace fulcrum {

namespace {

/// The side after conv(k9), pool2, conv(k5), pool2 on a side of `side`
/// (0 if the image is too small for them).
int64_t featureSide(int64_t side) { return side < 20 ? 0 : ((side - 8) / 2 - 4) / 2; }

void checkShape(const ConfigNode& options, const std::vector<int64_t>& inputShape) {
  if (inputShape.empty()) return;
  if (inputShape.size() == 3 && featureSide(inputShape[1]) > 0 && featureSide(inputShape[2]) > 0)
    return;
  options.fail("kind", fmt::format("the lenet trunk takes C × H × W images with H and W at least "
                                   "20 (e.g. multi_fashion's 1×36×36), not inputs of shape [{}]; "
                                   "use kind: mlp",
                                   fmt::join(inputShape, ", ")));
}

/// 20 × h × w features after the two conv stages: the fc's inputs.
int64_t fcInputs(const std::vector<int64_t>& inputShape) {
  return 20 * featureSide(inputShape[1]) * featureSide(inputShape[2]);
}

}  // namespace

TrunkInfo lenetTrunk() {
  namespace nn = torch::nn;
  TrunkInfo row;
  row.name = "lenet";
  row.description = "LeNet on C×H×W images: two conv + pool stages, fc → 50";
  row.check = checkShape;
  // planTrunk runs `check` with the data's shape before every build.
  row.build = [](const ConfigNode&, const std::vector<int64_t>& inputShape) {
    TrunkParts parts;
    parts.layers = nn::Sequential();
    parts.layers->push_back(nn::Conv2d(nn::Conv2dOptions(inputShape[0], 10, 9)));
    parts.layers->push_back(nn::ReLU());
    parts.layers->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    parts.layers->push_back(nn::Conv2d(nn::Conv2dOptions(10, 20, 5)));
    parts.layers->push_back(nn::ReLU());
    parts.layers->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    parts.layers->push_back(nn::Flatten());
    parts.lastLinear = nn::Linear(fcInputs(inputShape), 50);
    parts.layers->push_back(parts.lastLinear);
    parts.layers->push_back(nn::ReLU());
    parts.stageEnds = {2, 5, 8};  // after each conv stage's pooling, after the fc
    parts.width = 50;
    return parts;
  };
  row.size = [](const ConfigNode&, const std::vector<int64_t>& inputShape) {
    ModelSize size;
    size.width = 50;
    size.stages = 3;
    if (inputShape.size() != 3) return size;
    const auto channels = static_cast<double>(inputShape[0]);
    const auto fc = static_cast<double>(fcInputs(inputShape));
    size.parameters = 10.0 * channels * 81 + 10 + 20.0 * 10 * 25 + 20 + fc * 50 + 50;
    const auto conv1 = static_cast<double>((inputShape[1] - 8) * (inputShape[2] - 8));
    const auto conv2 =
        static_cast<double>(((inputShape[1] - 8) / 2 - 4) * ((inputShape[2] - 8) / 2 - 4));
    size.activationWidth = 10.0 * conv1 + 20.0 * conv2 + 50;
    return size;
  };
  return row;
}

}  // namespace fulcrum
