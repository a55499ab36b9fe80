#include "framework/gradients.h"

#include <torch/torch.h>

#include <stdexcept>

namespace fulcrum {

int64_t countElements(const std::vector<torch::Tensor>& tensors) {
  int64_t count = 0;
  for (const auto& tensor : tensors) count += tensor.numel();
  return count;
}

AutogradGradientSource::AutogradGradientSource(std::vector<torch::Tensor> shared,
                                               std::vector<torch::Tensor> lastLayer)
    : shared_(std::move(shared)),
      lastLayer_(std::move(lastLayer)),
      sharedCount_(countElements(shared_)),
      lastLayerCount_(countElements(lastLayer_)) {}

void AutogradGradientSource::reset(const std::vector<torch::Tensor>& losses,
                                   const std::vector<torch::Tensor>& features) {
  losses_ = &losses;
  features_ = features;
  featureCount_ = countElements(features_);
  sharedMatrix_.fresh = lastLayerMatrix_.fresh = representationMatrix_.fresh = false;
}

void AutogradGradientSource::fill(Matrix& matrix, const std::vector<torch::Tensor>& inputs,
                                  int64_t width) {
  TORCH_CHECK(losses_ != nullptr, "gradient source used before reset()");
  const auto tasks = static_cast<int64_t>(losses_->size());
  const torch::Tensor& first = inputs.front();
  if (!matrix.buffer.defined() || matrix.buffer.size(0) != tasks ||
      matrix.buffer.size(1) != width) {
    matrix.buffer = torch::empty({tasks, width}, first.options().requires_grad(false));
  }
  torch::NoGradGuard noGrad;
  for (int64_t i = 0; i < tasks; ++i) {
    std::vector<torch::Tensor> grads;
    {
      // autograd::grad needs grad mode for the graph it walks, not for the copies.
      at::AutoGradMode enable(true);
      grads = torch::autograd::grad({(*losses_)[static_cast<std::size_t>(i)]}, inputs, {},
                                    /*retain_graph=*/true, /*create_graph=*/false,
                                    /*allow_unused=*/true);
    }
    ++backwardPasses_;
    torch::Tensor row = matrix.buffer[i];
    int64_t offset = 0;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      const int64_t n = inputs[k].numel();
      torch::Tensor slot = row.narrow(0, offset, n);
      if (grads[k].defined()) {
        slot.copy_(grads[k].reshape({n}));
      } else {
        slot.zero_();
      }
      offset += n;
    }
  }
  matrix.fresh = true;
}

const torch::Tensor& AutogradGradientSource::sharedParameters() {
  if (!sharedMatrix_.fresh) fill(sharedMatrix_, shared_, sharedCount_);
  return sharedMatrix_.buffer;
}

const torch::Tensor& AutogradGradientSource::lastSharedLayer() {
  if (!lastLayerMatrix_.fresh) fill(lastLayerMatrix_, lastLayer_, lastLayerCount_);
  return lastLayerMatrix_.buffer;
}

const torch::Tensor& AutogradGradientSource::representation() {
  if (!representationMatrix_.fresh) {
    TORCH_CHECK(!features_.empty(), "the model has no features for a representation gradient");
    fill(representationMatrix_, features_, featureCount_);
  }
  return representationMatrix_.buffer;
}

FixedGradientSource::FixedGradientSource(torch::Tensor shared, torch::Tensor lastLayer,
                                         torch::Tensor representation)
    : shared_(std::move(shared)),
      lastLayer_(std::move(lastLayer)),
      representation_(std::move(representation)) {}

const torch::Tensor& FixedGradientSource::sharedParameters() {
  if (!shared_.defined()) throw std::logic_error("no shared-parameter gradients were given");
  return shared_;
}

const torch::Tensor& FixedGradientSource::lastSharedLayer() {
  if (!lastLayer_.defined()) return sharedParameters();
  return lastLayer_;
}

const torch::Tensor& FixedGradientSource::representation() {
  if (!representation_.defined()) return sharedParameters();
  return representation_;
}

}  // namespace fulcrum
