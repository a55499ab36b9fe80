#include "models/heads.h"

#include <torch/torch.h>

namespace fulcrum {

namespace {

/// Linear + ReLU per width of `hidden`, then the output layer.
torch::nn::Sequential tower(const std::vector<int64_t>& hidden, int64_t width, int64_t outputs) {
  torch::nn::Sequential layers;
  for (int64_t out : hidden) {
    layers->push_back(torch::nn::Linear(width, out));
    layers->push_back(torch::nn::ReLU());
    width = out;
  }
  layers->push_back(torch::nn::Linear(width, outputs));
  return layers;
}

ModelSize towerSize(const std::vector<int64_t>& hidden, int64_t width, int64_t outputs) {
  ModelSize size;
  auto in = static_cast<double>(width);
  for (int64_t out : hidden) {
    size.parameters += in * static_cast<double>(out) + static_cast<double>(out);
    size.activationWidth += static_cast<double>(out);
    in = static_cast<double>(out);
  }
  size.parameters += in * static_cast<double>(outputs) + static_cast<double>(outputs);
  size.activationWidth += static_cast<double>(outputs);
  return size;
}

std::vector<int64_t> headHidden(const ConfigNode& options) {
  return options.getIntList("hidden", {50}, 1, kMaxModelWidth);
}

}  // namespace

HeadInfo linearHead() {
  HeadInfo row;
  row.name = "linear";
  row.description = "Linear(width, outputs)";
  row.build = [](const ConfigNode&, int64_t width, const TaskSpec& task) {
    return tower({}, width, task.outputs);
  };
  row.size = [](const ConfigNode&, int64_t width, const TaskSpec& task) {
    return towerSize({}, width, task.outputs);
  };
  return row;
}

HeadInfo mlpHead() {
  HeadInfo row;
  row.name = "mlp";
  row.description = "Linear + ReLU per width of `hidden`, then Linear(·, outputs)";
  row.check = [](const ConfigNode& options) { headHidden(options); };
  row.build = [](const ConfigNode& options, int64_t width, const TaskSpec& task) {
    return tower(headHidden(options), width, task.outputs);
  };
  row.size = [](const ConfigNode& options, int64_t width, const TaskSpec& task) {
    return towerSize(headHidden(options), width, task.outputs);
  };
  return row;
}

HeadInfo convHead() {
  namespace nn = torch::nn;
  HeadInfo row;
  row.name = "conv";
  row.description = "per pixel: conv3×3(width, width), conv1×1(width, outputs) (MTAN's)";
  row.spatial = true;
  row.build = [](const ConfigNode&, int64_t width, const TaskSpec& task) {
    return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(width, width, 3).padding(1)),
                          nn::Conv2d(nn::Conv2dOptions(width, task.outputs, 1)));
  };
  row.size = [](const ConfigNode&, int64_t width, const TaskSpec& task) {
    ModelSize size;
    const auto w = static_cast<double>(width), out = static_cast<double>(task.outputs);
    size.parameters = 9 * w * w + w + w * out + out;
    size.activationWidth = w + out;  // per pixel; the trunk's size counts the pixels
    return size;
  };
  return row;
}

}  // namespace fulcrum
