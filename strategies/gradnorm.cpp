#include "strategies/gradnorm.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <numeric>
#include <stdexcept>

#include "strategies/support.h"

namespace fulcrum {
namespace {

constexpr double kAdamBeta1 = 0.9;
constexpr double kAdamBeta2 = 0.999;
constexpr double kAdamEps = 1e-8;

double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double sign(double x) { return static_cast<double>((x > 0.0) - (x < 0.0)); }

}  // namespace

GradNormOptions readGradNormOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  (void)tasks;
  GradNormOptions out;
  out.alpha = options.getDouble("alpha", out.alpha, 0.0);
  out.lr = options.getDouble("lr", out.lr);
  if (!(out.lr > 0.0)) options.fail("lr", fmt::format("must be > 0, got {}", out.lr));
  out.optimizer = options.getString("optimizer", "adam", {"adam", "sgd"}) == "adam"
                      ? GradNormOptimizer::kAdam
                      : GradNormOptimizer::kSgd;
  out.layer = options.getString("layer", "last", {"last", "all"}) == "last" ? GradNormLayer::kLast
                                                                            : GradNormLayer::kAll;
  out.minWeight = options.getDouble("min_weight", out.minWeight);
  if (!(out.minWeight > 0.0 && out.minWeight < 1.0)) {
    options.fail("min_weight", fmt::format("must be in (0, 1), got {}", out.minWeight));
  }
  return out;
}

GradNorm::GradNorm(GradNormOptions options, std::vector<TaskSpec> tasks)
    : options_(options),
      tasks_(std::move(tasks)),
      weights_(tasks_.size(), 1.0),
      adamM_(tasks_.size(), 0.0),
      adamV_(tasks_.size(), 0.0) {
  if (tasks_.empty()) throw std::invalid_argument("gradnorm: needs at least one task");
  if (!(options_.alpha >= 0.0)) {
    throw std::invalid_argument(
        fmt::format("gradnorm: alpha must be >= 0, got {}", options_.alpha));
  }
  if (!(options_.lr > 0.0)) {
    throw std::invalid_argument(fmt::format("gradnorm: lr must be > 0, got {}", options_.lr));
  }
  if (!(options_.minWeight > 0.0 && options_.minWeight < 1.0)) {
    throw std::invalid_argument(
        fmt::format("gradnorm: min_weight must be in (0, 1), got {}", options_.minWeight));
  }
}

GradientNeed GradNorm::needs() const {
  return options_.layer == GradNormLayer::kLast ? GradientNeed::kLastSharedLayer
                                                : GradientNeed::kSharedParameters;
}

void GradNorm::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "gradnorm");
}

StepOutput GradNorm::step(const StepInput& input) {
  const std::size_t taskCount = tasks_.size();
  const torch::Tensor losses = detail::stackLosses(input.losses, taskCount, "gradnorm");
  const std::vector<double> loss = detail::toDoubles(losses);
  for (std::size_t i = 0; i < taskCount; ++i) {
    // A ratio L(t)/L(0) is a training rate only for non-negative losses.
    if (!std::isfinite(loss[i]) || loss[i] < 0.0) {
      throw std::runtime_error(fmt::format(
          "gradnorm: loss of task {} is {} at step {}; GradNorm needs finite losses >= 0",
          tasks_[i].name, loss[i], input.step));
    }
  }
  if (initialLosses_.empty()) {
    for (std::size_t i = 0; i < taskCount; ++i) {
      if (loss[i] == 0.0) {
        throw std::runtime_error(
            fmt::format("gradnorm: initial loss of task {} is 0 at step {}; L(t)/L(0) is undefined",
                        tasks_[i].name, input.step));
      }
    }
    initialLosses_ = loss;
  }

  const torch::Tensor& gradients = options_.layer == GradNormLayer::kLast
                                       ? input.gradients.lastSharedLayer()
                                       : input.gradients.sharedParameters();
  if (gradients.dim() != 2 || gradients.size(0) != static_cast<int64_t>(taskCount)) {
    throw std::logic_error(fmt::format("gradnorm: expected a {} x P gradient matrix, got {}",
                                       taskCount, c10::str(gradients.sizes())));
  }
  const std::vector<double> norm = detail::toDoubles(gradients.norm(2, /*dim=*/1));

  std::vector<double> ratio(taskCount);  // L̃_i
  for (std::size_t i = 0; i < taskCount; ++i) ratio[i] = loss[i] / initialLosses_[i];
  const double meanRatio = mean(ratio);
  std::vector<double> weighted(taskCount);  // G_i
  for (std::size_t i = 0; i < taskCount; ++i) {
    if (!std::isfinite(norm[i])) {
      throw std::runtime_error(fmt::format("gradnorm: gradient norm of task {} is {} at step {}",
                                           tasks_[i].name, norm[i], input.step));
    }
    weighted[i] = weights_[i] * norm[i];
  }
  const double meanWeighted = mean(weighted);  // Ḡ

  double gradLoss = 0.0;
  std::vector<double> gradient(taskCount);  // ∂L_grad/∂w
  for (std::size_t i = 0; i < taskCount; ++i) {
    // Every L̃ zero means every task is equally (fully) trained: r = 1.
    const double r = meanRatio > 0.0 ? ratio[i] / meanRatio : 1.0;
    const double target = meanWeighted * std::pow(r, options_.alpha);
    gradLoss += std::abs(weighted[i] - target);
    gradient[i] = sign(weighted[i] - target) * norm[i];
  }

  StepOutput out;
  out.kind = StepOutput::Kind::kObjective;
  out.objective = detail::weightedSum(losses, weights_);
  out.weights = detail::reportedWeights(weights_, losses);
  out.diagnostics = {gradLoss};
  updateWeights(gradient);
  return out;
}

void GradNorm::updateWeights(const std::vector<double>& gradient) {
  const std::size_t taskCount = weights_.size();
  if (options_.optimizer == GradNormOptimizer::kAdam) {
    ++adamSteps_;
    const double correction1 = 1.0 - std::pow(kAdamBeta1, static_cast<double>(adamSteps_));
    const double correction2 = 1.0 - std::pow(kAdamBeta2, static_cast<double>(adamSteps_));
    for (std::size_t i = 0; i < taskCount; ++i) {
      adamM_[i] = kAdamBeta1 * adamM_[i] + (1.0 - kAdamBeta1) * gradient[i];
      adamV_[i] = kAdamBeta2 * adamV_[i] + (1.0 - kAdamBeta2) * gradient[i] * gradient[i];
      const double denominator = std::sqrt(adamV_[i] / correction2) + kAdamEps;
      weights_[i] -= options_.lr * (adamM_[i] / correction1) / denominator;
    }
  } else {
    for (std::size_t i = 0; i < taskCount; ++i) weights_[i] -= options_.lr * gradient[i];
  }
  for (double& w : weights_) w = std::max(w, options_.minWeight);
  const double scale =
      static_cast<double>(taskCount) / std::accumulate(weights_.begin(), weights_.end(), 0.0);
  for (double& w : weights_) w *= scale;
}

StrategyState GradNorm::state() const {
  StrategyState out{
      {"weights", detail::stateVector(weights_)},
      {"adam_m", detail::stateVector(adamM_)},
      {"adam_v", detail::stateVector(adamV_)},
      {"adam_steps", torch::tensor(adamSteps_, torch::kInt64)},
  };
  if (!initialLosses_.empty()) out["initial_losses"] = detail::stateVector(initialLosses_);
  return out;
}

void GradNorm::loadState(const StrategyState& state) {
  const std::size_t taskCount = tasks_.size();
  auto vector = [&](const std::string& key) {
    std::vector<double> v = detail::toDoubles(detail::requireState(state, key, 1, "gradnorm"));
    if (v.size() != taskCount) {
      throw std::invalid_argument(
          fmt::format("gradnorm: checkpoint '{}' has {} entries, expected {} (one per task)", key,
                      v.size(), taskCount));
    }
    return v;
  };
  std::vector<double> weights = vector("weights");
  std::vector<double> adamM = vector("adam_m");
  std::vector<double> adamV = vector("adam_v");
  const auto adamSteps = detail::requireState(state, "adam_steps", 0, "gradnorm").item<int64_t>();
  std::vector<double> initial;
  if (state.count("initial_losses") != 0) initial = vector("initial_losses");
  // Assign only once everything has been read, so a bad checkpoint leaves the strategy intact.
  weights_ = std::move(weights);
  adamM_ = std::move(adamM);
  adamV_ = std::move(adamV);
  adamSteps_ = adamSteps;
  initialLosses_ = std::move(initial);
}

}  // namespace fulcrum
