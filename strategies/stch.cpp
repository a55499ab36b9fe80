#include "strategies/stch.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "strategies/support.h"

namespace fulcrum {

namespace {

void checkNadir(const std::vector<double>& nadir, const std::vector<TaskSpec>& tasks,
                const char* source) {
  for (std::size_t i = 0; i < nadir.size(); ++i) {
    if (!(nadir[i] > 0.0) || !std::isfinite(nadir[i])) {
      throw std::invalid_argument(
          fmt::format("stch: {} nadir of task '{}' must be finite and > 0, got {}", source,
                      tasks[i].name, nadir[i]));
    }
  }
}

}  // namespace

StchOptions readStchOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  StchOptions out;
  out.mu = options.getDouble("mu", out.mu);
  if (!(out.mu > 0.0)) options.fail("mu", fmt::format("must be > 0, got {}", out.mu));
  if (options.has("nadir")) {
    if (options.has("warmup_epochs")) {
      options.fail("warmup_epochs", "cannot be combined with a given 'nadir'");
    }
    out.nadir = options.getDoubleList("nadir", {});
    if (out.nadir.size() != tasks.size()) {
      options.fail("nadir", fmt::format("needs one value per task ({}: {}), got {}", tasks.size(),
                                        detail::taskNames(tasks), out.nadir.size()));
    }
    for (double n : out.nadir) {
      if (!(n > 0.0)) options.fail("nadir", fmt::format("values must be > 0, got {}", n));
    }
  } else {
    out.warmupEpochs = options.getInt("warmup_epochs", out.warmupEpochs, 1);
  }
  return out;
}

SmoothTchebycheff::SmoothTchebycheff(StchOptions options, std::vector<TaskSpec> tasks)
    : options_(std::move(options)), tasks_(std::move(tasks)) {
  if (!(options_.mu > 0.0))
    throw std::invalid_argument(fmt::format("stch: mu must be > 0, got {}", options_.mu));
  if (!options_.nadir.empty()) {
    if (options_.nadir.size() != tasks_.size()) {
      throw std::invalid_argument(
          fmt::format("stch: {} nadir values for {} tasks", options_.nadir.size(), tasks_.size()));
    }
    checkNadir(options_.nadir, tasks_, "given");
  }
}

void SmoothTchebycheff::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "stch");
  nadir_ = options_.nadir;
}

StepOutput SmoothTchebycheff::step(const StepInput& input) {
  const torch::Tensor losses = detail::stackLosses(input.losses, tasks_.size(), "stch");
  const torch::Tensor values = losses.detach();
  StepOutput out;
  out.kind = StepOutput::Kind::kObjective;
  if (nadir_.empty()) {
    out.objective = losses.log().sum();
    out.weights = values.reciprocal().to(torch::kFloat32);
    out.diagnostics.assign(tasks_.size(), std::numeric_limits<double>::quiet_NaN());
    return out;
  }
  const double mu = options_.mu;
  const torch::Tensor scaled = (losses / detail::constantLike(nadir_, losses)).log() / mu;
  out.objective = mu * torch::logsumexp(scaled, 0);
  const torch::Tensor p = torch::softmax(scaled.detach(), 0);
  out.weights = (p / values).to(torch::kFloat32);
  out.diagnostics = detail::toDoubles(p);
  return out;
}

void SmoothTchebycheff::onEpochEnd(const EpochStats& stats) {
  if (!nadir_.empty() || stats.epoch + 1 < options_.warmupEpochs) return;
  if (stats.meanTrainLosses.size() != tasks_.size()) {
    throw std::invalid_argument(fmt::format("stch: {} mean losses for {} tasks",
                                            stats.meanTrainLosses.size(), tasks_.size()));
  }
  checkNadir(stats.meanTrainLosses, tasks_,
             fmt::format("epoch {}'s mean-loss", stats.epoch + 1).c_str());
  nadir_ = stats.meanTrainLosses;
}

std::vector<std::string> SmoothTchebycheff::diagnosticNames() const {
  std::vector<std::string> names;
  for (const auto& task : tasks_) names.push_back("softmax_" + task.name);
  return names;
}

StrategyState SmoothTchebycheff::state() const { return {{"nadir", detail::stateVector(nadir_)}}; }

void SmoothTchebycheff::loadState(const StrategyState& state) {
  const std::vector<double> nadir =
      detail::toDoubles(detail::requireState(state, "nadir", 1, "stch"));
  if (!nadir.empty() && nadir.size() != tasks_.size()) {
    throw std::invalid_argument(fmt::format(
        "stch: checkpoint 'nadir' has {} entries, expected 0 or {}", nadir.size(), tasks_.size()));
  }
  checkNadir(nadir, tasks_, "checkpoint");
  nadir_ = nadir;
}

}  // namespace fulcrum
