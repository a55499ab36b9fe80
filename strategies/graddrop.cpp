#include "strategies/graddrop.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <random>
#include <stdexcept>

#include "strategies/support.h"

namespace fulcrum {

namespace {
// Keeps GradDrop's stream apart from other users of the trial seed.
constexpr uint32_t kStream = 0x47447270u;
}  // namespace

GradDropOptions readGradDropOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  GradDropOptions out;
  if (options.has("leak") && options.yaml()["leak"].IsSequence()) {
    out.leaks = options.getDoubleList("leak", {}, 0.0, 1.0);
    if (out.leaks.size() != tasks.size()) {
      options.fail("leak", fmt::format("expected {} leaks (one per task: {}), got {}", tasks.size(),
                                       detail::taskNames(tasks), out.leaks.size()));
    }
  } else {
    out.leaks.assign(tasks.size(), options.getDouble("leak", 0.0, 0.0, 1.0));
  }
  return out;
}

GradDrop::GradDrop(GradDropOptions options, std::vector<TaskSpec> tasks)
    : options_(std::move(options)), tasks_(std::move(tasks)) {
  if (options_.leaks.size() != tasks_.size()) {
    throw std::invalid_argument(
        fmt::format("graddrop: expected {} leaks (one per task: {}), got {}", tasks_.size(),
                    detail::taskNames(tasks_), options_.leaks.size()));
  }
}

void GradDrop::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "graddrop");
  seed_ = context.seed;
  stepsDrawn_ = 0;
}

std::vector<std::string> GradDrop::diagnosticNames() const {
  return {"kept_fraction", "conflict_fraction"};
}

StepOutput GradDrop::step(const StepInput& input) {
  const std::size_t n = tasks_.size();
  const torch::Tensor losses = detail::stackLosses(input.losses, n, "graddrop");
  const torch::Tensor& g = input.gradients.representation();
  const int64_t width = g.defined() && g.dim() == 2 ? g.size(1) : 0;
  // Drawn on the host from a standard engine so that the masks are the same
  // on every platform and libtorch version; the rest stays on g's device.
  const torch::Tensor u = detail::gradDropUniforms(seed_, stepsDrawn_, width);
  const detail::GradDropResult result = detail::gradDropCombine(g, u, options_.leaks);
  ++stepsDrawn_;

  StepOutput out;
  out.kind = StepOutput::Kind::kRepresentationGradient;
  out.direction = result.direction;
  out.weights = detail::reportedWeights(std::vector<double>(n, 1.0), losses);
  out.diagnostics.push_back(result.nonzero > 0 ? static_cast<double>(result.kept) /
                                                     static_cast<double>(result.nonzero)
                                               : 1.0);
  out.diagnostics.push_back(
      width > 0 ? static_cast<double>(result.conflicting) / static_cast<double>(width) : 0.0);
  return out;
}

StrategyState GradDrop::state() const {
  return {{"seed", torch::tensor(static_cast<int64_t>(seed_))},
          {"steps_drawn", torch::tensor(stepsDrawn_)}};
}

void GradDrop::loadState(const StrategyState& state) {
  const int64_t seed = detail::requireState(state, "seed", 0, "graddrop").item<int64_t>();
  const int64_t drawn = detail::requireState(state, "steps_drawn", 0, "graddrop").item<int64_t>();
  if (drawn < 0) {
    throw std::invalid_argument(
        fmt::format("graddrop: checkpoint 'steps_drawn' is negative ({})", drawn));
  }
  seed_ = static_cast<uint64_t>(seed);
  stepsDrawn_ = drawn;
}

namespace detail {

GradDropResult gradDropCombine(const torch::Tensor& g, const torch::Tensor& u,
                               const std::vector<double>& leaks) {
  const auto taskCount = static_cast<int64_t>(leaks.size());
  if (!g.defined() || g.dim() != 2 || g.size(0) != taskCount) {
    throw std::invalid_argument(fmt::format(
        "graddrop: expected a gradient matrix with {} rows, got {}", taskCount,
        g.defined() ? fmt::format("shape [{}]", fmt::join(g.sizes().vec(), ", ")) : "none"));
  }
  if (!u.defined() || u.dim() != 1 || u.size(0) != g.size(1)) {
    throw std::invalid_argument(fmt::format("graddrop: expected {} uniforms, got {}", g.size(1),
                                            u.defined() ? u.numel() : 0));
  }
  const torch::Tensor grads = g.detach();
  if (!torch::isfinite(grads).all().item<bool>()) {
    throw std::invalid_argument("graddrop: the task gradients contain NaN or infinite values");
  }
  const torch::Tensor uniforms = u.to(grads.device(), grads.scalar_type());

  const torch::Tensor sum = grads.sum(0);
  const torch::Tensor magnitude = grads.abs().sum(0);
  // 0/0 where every task's entry is 0: P = ½ there (nothing to keep anyway).
  const torch::Tensor present = magnitude > 0;
  const torch::Tensor ratio = torch::where(present, sum / magnitude, torch::zeros_like(sum));
  const torch::Tensor purity = 0.5 * (1.0 + ratio);
  const torch::Tensor keepPositive = (purity > uniforms).unsqueeze(0);
  const torch::Tensor keepNegative = (purity < uniforms).unsqueeze(0);
  const torch::Tensor mask = torch::logical_or(torch::logical_and(keepPositive, grads > 0),
                                               torch::logical_and(keepNegative, grads < 0));

  const torch::Tensor leak = constantLike(leaks, grads).unsqueeze(1);
  GradDropResult out;
  out.direction = ((leak + (1.0 - leak) * mask.to(grads.scalar_type())) * grads).sum(0);
  out.kept = mask.sum().item<int64_t>();
  out.nonzero = (grads != 0).sum().item<int64_t>();
  // One sign throughout gives a ratio of exactly ±1 (the same sums).
  out.conflicting = torch::logical_and(present, ratio.abs() < 1).sum().item<int64_t>();
  return out;
}

torch::Tensor gradDropUniforms(uint64_t seed, int64_t draw, int64_t n) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(draw), static_cast<uint32_t>(draw >> 32), kStream};
  std::mt19937_64 engine(seq);
  torch::Tensor out = torch::empty({n}, torch::kFloat64);
  double* data = out.data_ptr<double>();
  for (int64_t k = 0; k < n; ++k) {
    data[k] = static_cast<double>(((engine() >> 41) << 1) | 1u) * 0x1.0p-24;
  }
  return out;
}

}  // namespace detail

}  // namespace fulcrum
