#include "framework/model.h"

#include <fmt/format.h>

#include <stdexcept>

namespace fulcrum {

const torch::Tensor& inputOf(const ModelInputs& inputs, std::size_t task, std::size_t taskCount) {
  if (inputs.size() == 1) return inputs.front();
  if (inputs.size() != taskCount) {
    throw std::invalid_argument(
        fmt::format("a model of {} tasks takes one input batch or one per task, not {}", taskCount,
                    inputs.size()));
  }
  return inputs[task];
}

}  // namespace fulcrum
