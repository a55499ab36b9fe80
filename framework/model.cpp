#include "framework/model.h"

#include <torch/torch.h>

#include "framework/extension_registry.h"

namespace fulcrum {

namespace nn = torch::nn;

MultiTaskModelImpl::MultiTaskModelImpl(const TrunkSpec& trunk, const HeadSpec& head,
                                       const std::vector<int64_t>& inputShape,
                                       const std::vector<TaskSpec>& tasks) {
  trunk_ = nn::Sequential();
  if (const TrunkInfo* registered = findTrunk(trunk.kind)) {
    TrunkParts parts = registered->build(trunk.options, inputShape);
    TORCH_CHECK(!parts.layers.is_empty() && !parts.lastLinear.is_empty() && parts.width >= 1, "trunk '",
                trunk.kind, "': the builder must return layers, their last linear layer and a width >= 1");
    trunk_ = parts.layers;
    lastShared_ = parts.lastLinear;
    width_ = parts.width;
  } else if (trunk.kind == "lenet") {
    TORCH_CHECK(inputShape == std::vector<int64_t>({1, 36, 36}),
                "the lenet trunk takes 1×36×36 inputs, got ", c10::IntArrayRef(inputShape));
    trunk_->push_back(nn::Conv2d(nn::Conv2dOptions(1, 10, 9)));
    trunk_->push_back(nn::ReLU());
    trunk_->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    trunk_->push_back(nn::Conv2d(nn::Conv2dOptions(10, 20, 5)));
    trunk_->push_back(nn::ReLU());
    trunk_->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    trunk_->push_back(nn::Flatten());
    lastShared_ = nn::Linear(20 * 5 * 5, 50);
    trunk_->push_back(lastShared_);
    trunk_->push_back(nn::ReLU());
    width_ = 50;
  } else {
    int64_t in = 1;
    for (int64_t d : inputShape) in *= d;
    if (inputShape.size() != 1) trunk_->push_back(nn::Flatten());
    for (int64_t out : trunk.hidden) {
      lastShared_ = nn::Linear(in, out);
      trunk_->push_back(lastShared_);
      trunk_->push_back(nn::ReLU());
      in = out;
    }
    width_ = in;
  }
  register_module("trunk", trunk_);

  heads_ = nn::ModuleList();
  for (const auto& task : tasks) {
    nn::Sequential layers;
    int64_t in = width_;
    if (head.kind == "mlp") {
      for (int64_t out : head.hidden) {
        layers->push_back(nn::Linear(in, out));
        layers->push_back(nn::ReLU());
        in = out;
      }
    }
    layers->push_back(nn::Linear(in, task.outputs));
    heads_->push_back(layers);
  }
  register_module("heads", heads_);
}

torch::Tensor MultiTaskModelImpl::representation(const torch::Tensor& inputs) {
  return trunk_->forward(inputs);
}

torch::Tensor MultiTaskModelImpl::head(std::size_t task, const torch::Tensor& z) {
  return heads_->ptr<nn::SequentialImpl>(task)->forward(z);
}

std::vector<torch::Tensor> MultiTaskModelImpl::sharedParameters() const {
  return trunk_->parameters();
}

std::vector<torch::Tensor> MultiTaskModelImpl::lastSharedLayerParameters() const {
  return {lastShared_->weight, lastShared_->bias};
}

std::vector<torch::Tensor> MultiTaskModelImpl::headParameters(std::size_t task) const {
  return heads_->ptr(task)->parameters();
}

}  // namespace fulcrum
