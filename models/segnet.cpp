#include "models/segnet.h"

#include <fmt/format.h>
#include <torch/torch.h>

namespace fulcrum {

namespace {

namespace nn = torch::nn;

std::vector<int64_t> segnetFilters(const ConfigNode& options) {
  std::vector<int64_t> filters =
      options.getIntList("filters", {64, 128, 256, 512, 512}, 1, kMaxModelWidth);
  if (filters.empty() || filters.size() > 8)
    options.fail("filters", "a segnet trunk has 1 to 8 stages (one width each)");
  return filters;
}

/// Convolutions in encoder (and decoder) stage `stage`: 2, 2, then 3.
int64_t convsIn(std::size_t stage) { return stage < 2 ? 2 : 3; }

/// `count` layers of conv3×3 + BatchNorm + ReLU, the first from `in` to
/// `out` channels, the rest `out` to `out`.
nn::Sequential convStage(int64_t in, int64_t out, int64_t count) {
  nn::Sequential stage;
  for (int64_t k = 0; k < count; ++k) {
    nn::Conv2d conv(nn::Conv2dOptions(k == 0 ? in : out, out, 3).padding(1));
    nn::init::xavier_normal_(conv->weight);
    nn::init::zeros_(conv->bias);
    stage->push_back(conv);
    stage->push_back(nn::BatchNorm2d(out));
    stage->push_back(nn::ReLU());
  }
  return stage;
}

class SegNetImpl : public nn::Module {
 public:
  SegNetImpl(int64_t channels, const std::vector<int64_t>& filters) {
    const std::size_t stages = filters.size();
    encoder_ = register_module("encoder", nn::ModuleList());
    decoder_ = register_module("decoder", nn::ModuleList());
    for (std::size_t i = 0; i < stages; ++i) {
      encoder_->push_back(convStage(i == 0 ? channels : filters[i - 1], filters[i], convsIn(i)));
      // Mirrored: stage i's decoder goes from filters[i] to filters[i − 1].
      const int64_t out = filters[i == 0 ? 0 : i - 1];
      decoder_->push_back(convStage(filters[i], out, convsIn(i)));
    }
  }

  /// The decoder's last convolution, weight then bias (GradNorm's W).
  std::vector<torch::Tensor> lastConvolution() const {
    const auto& last = *decoder_->ptr<nn::SequentialImpl>(0);
    const auto conv = last.ptr<nn::Conv2dImpl>(last.size() - 3);
    return {conv->weight, conv->bias};
  }

  torch::Tensor forward(torch::Tensor x) {
    const std::size_t stages = encoder_->size();
    std::vector<torch::Tensor> indices(stages);
    std::vector<std::vector<int64_t>> sizes(stages);
    for (std::size_t i = 0; i < stages; ++i) {
      x = encoder_->ptr<nn::SequentialImpl>(i)->forward(x);
      sizes[i] = x.sizes().vec();
      std::tie(x, indices[i]) = torch::max_pool2d_with_indices(x, {2, 2}, {2, 2});
    }
    for (std::size_t k = stages; k-- > 0;) {
      x = torch::max_unpool2d(x, indices[k], {sizes[k][2], sizes[k][3]});
      x = decoder_->ptr<nn::SequentialImpl>(k)->forward(x);
    }
    return x;
  }

 private:
  nn::ModuleList encoder_{nullptr}, decoder_{nullptr};
};
TORCH_MODULE(SegNet);

void checkImages(const ConfigNode& options, const std::vector<int64_t>& inputShape) {
  const std::vector<int64_t> filters = segnetFilters(options);
  if (inputShape.empty()) return;
  const int64_t side = int64_t{1} << filters.size();
  if (inputShape.size() != 3 || inputShape[1] < side || inputShape[2] < side) {
    options.fail("kind", fmt::format("the segnet trunk takes C × H × W images with H and W at "
                                     "least {} (2^{} stages), not inputs of shape [{}]",
                                     side, filters.size(), fmt::join(inputShape, ", ")));
  }
}

}  // namespace

TrunkInfo segnetTrunk() {
  TrunkInfo row;
  row.name = "segnet";
  row.description = "SegNet encoder-decoder (MTAN's NYUv2 backbone): filters[0] × H × W maps";
  row.spatial = true;
  row.hasLastLinear = true;  // its last convolution (TrunkParts::lastLayer)
  row.check = checkImages;
  row.build = [](const ConfigNode& options, const std::vector<int64_t>& inputShape) {
    const std::vector<int64_t> filters = segnetFilters(options);
    TrunkParts parts;
    const SegNet segnet(inputShape[0], filters);
    parts.layers = nn::Sequential(segnet);
    parts.lastLayer = segnet->lastConvolution();
    parts.width = filters[0];
    return parts;
  };
  row.size = [](const ConfigNode& options, const std::vector<int64_t>& inputShape) {
    const std::vector<int64_t> filters = segnetFilters(options);
    ModelSize size;
    size.width = filters[0];
    size.stages = 1;
    if (inputShape.size() != 3) return size;
    // conv (9·in·out + out) and BatchNorm (2·out) per layer; activations
    // (convolution, normalisation, ReLU) at each stage's resolution.
    double pixels = static_cast<double>(inputShape[1] * inputShape[2]);
    for (std::size_t i = 0; i < filters.size(); ++i) {
      const double in = static_cast<double>(i == 0 ? inputShape[0] : filters[i - 1]);
      const double out = static_cast<double>(filters[i]);
      const double back = static_cast<double>(filters[i == 0 ? 0 : i - 1]);
      const double extra = static_cast<double>(convsIn(i) - 1);
      size.parameters += 9 * in * out + 3 * out + extra * (9 * out * out + 3 * out);
      size.parameters += 9 * out * back + 3 * back + extra * (9 * back * back + 3 * back);
      size.activationWidth += pixels * 3 * (static_cast<double>(convsIn(i)) * (out + back));
      pixels /= 4;
    }
    return size;
  };
  return row;
}

}  // namespace fulcrum
