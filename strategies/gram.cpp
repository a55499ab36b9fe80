#include "strategies/gram.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>
#include <torch/torch.h>

#include "strategies/support.h"

namespace fulcrum::detail {

Gram gramOf(const torch::Tensor& g, int64_t taskCount, const std::string& strategy) {
  if (!g.defined() || g.dim() != 2 || g.size(0) != taskCount) {
    throw std::invalid_argument(fmt::format("{}: expected a gradient matrix with {} rows, got {}",
                                            strategy, taskCount,
                                            g.defined() ? fmt::format("shape [{}]", fmt::join(g.sizes().vec(), ", ")) : "none"));
  }
  const torch::Tensor product = g.detach().mm(g.detach().t());
  // A NaN or infinite gradient makes every entry it touches non-finite, so
  // checking the T×T product avoids a pass over the T×P matrix.
  if (!torch::isfinite(product).all().item<bool>()) {
    throw std::invalid_argument(fmt::format("{}: the task gradients contain NaN or infinite values",
                                            strategy));
  }
  Gram out;
  out.n = taskCount;
  out.m = toDoubles(product.reshape({-1}));
  return out;
}

torch::Tensor combineRows(const torch::Tensor& g, const std::vector<double>& w) {
  const torch::Tensor weights = constantLike(w, g);
  return weights.unsqueeze(0).mm(g.detach()).squeeze(0);
}

GradientSpace readGradientSpace(const ConfigNode& options) {
  return options.getString("gradients", "parameters", {"parameters", "representation"}) ==
                 "representation"
             ? GradientSpace::kRepresentation
             : GradientSpace::kParameters;
}

GradientNeed needOf(GradientSpace space) {
  return space == GradientSpace::kRepresentation ? GradientNeed::kRepresentation
                                                 : GradientNeed::kSharedParameters;
}

StepOutput::Kind kindOf(GradientSpace space) {
  return space == GradientSpace::kRepresentation ? StepOutput::Kind::kRepresentationGradient
                                                 : StepOutput::Kind::kSharedGradient;
}

const torch::Tensor& taskMatrix(GradientSource& source, GradientSpace space) {
  return space == GradientSpace::kRepresentation ? source.representation()
                                                 : source.sharedParameters();
}

std::vector<std::string> perTaskNames(const std::string& prefix, const std::vector<TaskSpec>& tasks) {
  std::vector<std::string> out;
  for (const auto& task : tasks) out.push_back(prefix + task.name);
  return out;
}

std::mt19937_64 stepGenerator(uint64_t seed, int64_t step, uint32_t streamTag) {
  const auto s = static_cast<uint64_t>(step);
  std::vector<uint32_t> words{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                              static_cast<uint32_t>(s), static_cast<uint32_t>(s >> 32)};
  if (streamTag != 0) words.push_back(streamTag);
  std::seed_seq sequence(words.begin(), words.end());
  return std::mt19937_64(sequence);
}

std::vector<std::size_t> othersInRandomOrder(std::size_t task, std::size_t count, std::mt19937_64& rng) {
  std::vector<std::size_t> order;
  for (std::size_t j = 0; j < count; ++j) {
    if (j != task) order.push_back(j);
  }
  std::shuffle(order.begin(), order.end(), rng);
  return order;
}

}  // namespace fulcrum::detail
