#include "framework/strategy.h"

#include <torch/torch.h>

namespace fulcrum {

std::string toString(GradientNeed need) {
  switch (need) {
    case GradientNeed::kLosses: return "losses";
    case GradientNeed::kRepresentation: return "representation";
    case GradientNeed::kLastSharedLayer: return "last_shared_layer";
    case GradientNeed::kSharedParameters: return "shared_parameters";
  }
  return "unknown";
}

std::vector<double> toDoubles(const torch::Tensor& tensor) {
  const torch::Tensor flat = tensor.detach().to(torch::kCPU, torch::kFloat64).contiguous().reshape({-1});
  const double* data = flat.data_ptr<double>();
  return std::vector<double>(data, data + flat.numel());
}

}  // namespace fulcrum
