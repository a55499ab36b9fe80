#include "strategies/dwa.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "strategies/support.h"

namespace fulcrum {

DwaOptions readDwaOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  (void)tasks;
  DwaOptions out;
  out.temperature = options.getDouble("temperature", out.temperature);
  if (!(out.temperature > 0.0)) {
    options.fail("temperature", fmt::format("must be > 0, got {}", out.temperature));
  }
  const std::string mode = options.getString("mode", "epoch", {"epoch", "window"});
  out.mode = mode == "epoch" ? DwaMode::kEpoch : DwaMode::kWindow;
  if (out.mode == DwaMode::kEpoch && options.has("window")) {
    options.fail("window", "is used only with 'mode: window' (mode is 'epoch')");
  }
  out.window = options.getInt("window", out.window, 1);
  return out;
}

DynamicWeightAverage::DynamicWeightAverage(DwaOptions options, std::vector<TaskSpec> tasks)
    : options_(options), tasks_(std::move(tasks)) {
  if (tasks_.empty()) throw std::invalid_argument("dwa: needs at least one task");
  if (!(options_.temperature > 0.0)) {
    throw std::invalid_argument(
        fmt::format("dwa: temperature must be > 0, got {}", options_.temperature));
  }
  if (options_.window < 1) {
    throw std::invalid_argument(fmt::format("dwa: window must be >= 1, got {}", options_.window));
  }
}

std::size_t DynamicWeightAverage::capacity() const {
  return options_.mode == DwaMode::kEpoch ? 2 : 2 * static_cast<std::size_t>(options_.window);
}

void DynamicWeightAverage::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "dwa");
}

std::vector<double> DynamicWeightAverage::currentWeights() const {
  const std::size_t taskCount = tasks_.size();
  std::vector<double> lambda(taskCount, 1.0);
  if (history_.size() < capacity()) return lambda;

  // Epoch mode: the two rows are L(t−2), L(t−1). Window mode: the first W
  // rows are the older window, the last W the newer one.
  const std::size_t half = capacity() / 2;
  std::vector<double> rate(taskCount);  // w_k(t−1)
  for (std::size_t k = 0; k < taskCount; ++k) {
    double older = 0.0;
    double newer = 0.0;
    for (std::size_t j = 0; j < half; ++j) {
      older += history_[j][k];
      newer += history_[half + j][k];
    }
    if (older == 0.0) {
      throw std::runtime_error(fmt::format(
          "dwa: the mean loss of task {} over the older {} is 0; the ratio L(t-1)/L(t-2) is "
          "undefined",
          tasks_[k].name, options_.mode == DwaMode::kEpoch ? "epoch" : "window"));
    }
    rate[k] = newer / older;  // the window sizes cancel
  }
  // T·softmax(w/τ), shifted by the maximum so exp cannot overflow.
  const double top = *std::max_element(rate.begin(), rate.end());
  double sum = 0.0;
  for (std::size_t k = 0; k < taskCount; ++k) {
    lambda[k] = std::exp((rate[k] - top) / options_.temperature);
    sum += lambda[k];
  }
  for (double& l : lambda) l *= static_cast<double>(taskCount) / sum;
  return lambda;
}

StepOutput DynamicWeightAverage::step(const StepInput& input) {
  const torch::Tensor losses = detail::stackLosses(input.losses, tasks_.size(), "dwa");
  const std::vector<double> lambda = currentWeights();
  StepOutput out;
  out.kind = StepOutput::Kind::kObjective;
  out.objective = detail::weightedSum(losses, lambda);
  out.weights = detail::reportedWeights(lambda, losses);
  if (options_.mode == DwaMode::kWindow && input.present.empty()) {
    std::vector<double> values = detail::toDoubles(losses);
    for (std::size_t k = 0; k < values.size(); ++k) {
      if (!std::isfinite(values[k])) {
        throw std::runtime_error(fmt::format("dwa: loss of task {} is {} at step {}",
                                             tasks_[k].name, values[k], input.step));
      }
    }
    history_.push_back(std::move(values));
    if (history_.size() > capacity()) history_.pop_front();
  }
  return out;
}

void DynamicWeightAverage::onEpochEnd(const EpochStats& stats) {
  if (options_.mode != DwaMode::kEpoch) return;
  if (stats.meanTrainLosses.size() != tasks_.size()) {
    throw std::invalid_argument(
        fmt::format("dwa: epoch {} reports {} mean losses, expected {} (one per task)", stats.epoch,
                    stats.meanTrainLosses.size(), tasks_.size()));
  }
  for (std::size_t k = 0; k < tasks_.size(); ++k) {
    if (!std::isfinite(stats.meanTrainLosses[k])) {
      throw std::runtime_error(fmt::format("dwa: mean training loss of task {} in epoch {} is {}",
                                           tasks_[k].name, stats.epoch, stats.meanTrainLosses[k]));
    }
  }
  history_.push_back(stats.meanTrainLosses);
  if (history_.size() > capacity()) history_.pop_front();
}

StrategyState DynamicWeightAverage::state() const {
  return {{"history", detail::stateMatrix({history_.begin(), history_.end()}, tasks_.size())}};
}

void DynamicWeightAverage::loadState(const StrategyState& state) {
  const torch::Tensor& history = detail::requireState(state, "history", 2, "dwa");
  if (history.size(1) != static_cast<int64_t>(tasks_.size()) ||
      history.size(0) > static_cast<int64_t>(capacity())) {
    throw std::invalid_argument(fmt::format(
        "dwa: checkpoint 'history' is {}, expected at most {} rows of {} (one column per task)",
        c10::str(history.sizes()), capacity(), tasks_.size()));
  }
  const std::vector<std::vector<double>> rows = detail::matrixRows(history);
  history_.assign(rows.begin(), rows.end());
}

}  // namespace fulcrum
