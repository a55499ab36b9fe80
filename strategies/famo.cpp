#include "strategies/famo.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "strategies/support.h"

namespace fulcrum {

namespace {
constexpr double kEpsilon = 1e-8;  // added to every loss before its log, as the authors' code
constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kAdamEpsilon = 1e-8;  // torch.optim.Adam defaults
}  // namespace

FamoOptions readFamoOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  (void)tasks;
  FamoOptions out;
  out.lr = options.getDouble("lr", out.lr);
  if (!(out.lr > 0.0)) options.fail("lr", fmt::format("must be > 0, got {}", out.lr));
  out.weightDecay = options.getDouble("weight_decay", out.weightDecay, 0.0);
  out.lossAfter =
      options.getString("loss_after", "second_pass", {"second_pass", "next_step"}) == "next_step"
          ? FamoLossAfter::kNextStep
          : FamoLossAfter::kSecondPass;
  return out;
}

Famo::Famo(FamoOptions options, std::vector<TaskSpec> tasks)
    : options_(options), tasks_(std::move(tasks)) {
  if (!(options_.lr > 0.0))
    throw std::invalid_argument(fmt::format("famo: lr must be > 0, got {}", options_.lr));
  if (!(options_.weightDecay >= 0.0)) {
    throw std::invalid_argument(
        fmt::format("famo: weight_decay must be >= 0, got {}", options_.weightDecay));
  }
}

void Famo::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "famo");
  logits_.assign(tasks_.size(), 0.0);
  adamM_.assign(tasks_.size(), 0.0);
  adamV_.assign(tasks_.size(), 0.0);
  adamSteps_ = 0;
  before_.clear();
}

bool Famo::wantsLossesAfterStep() const { return options_.lossAfter == FamoLossAfter::kSecondPass; }

std::vector<double> Famo::taskWeights() const {
  const double largest = *std::max_element(logits_.begin(), logits_.end());
  std::vector<double> z(logits_.size());
  double sum = 0.0;
  for (std::size_t i = 0; i < z.size(); ++i) sum += z[i] = std::exp(logits_[i] - largest);
  for (double& zi : z) zi /= sum;
  return z;
}

StepOutput Famo::step(const StepInput& input) {
  if (logits_.empty()) throw std::logic_error("famo: step() called before attach()");
  const torch::Tensor losses = detail::stackLosses(input.losses, tasks_.size(), "famo");
  const std::vector<double> values = detail::toDoubles(losses);
  if (options_.lossAfter == FamoLossAfter::kSecondPass) {
    // Without afterStep() the logits would silently stay at their initial
    // value: the driver does not honour wantsLossesAfterStep().
    if (!before_.empty()) {
      throw std::logic_error(
          "famo: step() called again before afterStep() delivered the losses after "
          "the previous step (loss_after: second_pass)");
    }
  } else if (!before_.empty()) {
    updateLogits(before_, values);
  }
  before_ = values;

  const std::vector<double> z = taskWeights();
  double inverseC = 0.0;
  for (std::size_t i = 0; i < z.size(); ++i) inverseC += z[i] / (values[i] + kEpsilon);
  std::vector<double> coefficients(z.size()), weights(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) {
    coefficients[i] = z[i] / inverseC;
    weights[i] = coefficients[i] / (values[i] + kEpsilon);
  }
  StepOutput out;
  out.kind = StepOutput::Kind::kObjective;
  out.objective = detail::weightedSum((losses + kEpsilon).log(), coefficients);
  out.weights = detail::reportedWeights(weights, losses);
  out.diagnostics = z;
  return out;
}

void Famo::afterStep(const std::vector<double>& lossesAfter) {
  if (options_.lossAfter != FamoLossAfter::kSecondPass) {
    throw std::logic_error("famo: afterStep() called with loss_after: next_step");
  }
  if (before_.empty())
    throw std::logic_error("famo: afterStep() called without a preceding step()");
  if (lossesAfter.size() != tasks_.size()) {
    throw std::invalid_argument(fmt::format("famo: afterStep() got {} losses for {} tasks",
                                            lossesAfter.size(), tasks_.size()));
  }
  updateLogits(before_, lossesAfter);
  before_.clear();
}

void Famo::updateLogits(const std::vector<double>& before, const std::vector<double>& after) {
  const std::vector<double> z = taskWeights();
  std::vector<double> delta(z.size());
  double mean = 0.0;
  for (std::size_t i = 0; i < z.size(); ++i) {
    delta[i] = std::log(before[i] + kEpsilon) - std::log(after[i] + kEpsilon);
    mean += z[i] * delta[i];
  }
  ++adamSteps_;
  const double correction1 = 1.0 - std::pow(kBeta1, static_cast<double>(adamSteps_));
  const double correction2 = 1.0 - std::pow(kBeta2, static_cast<double>(adamSteps_));
  for (std::size_t i = 0; i < z.size(); ++i) {
    const double g = z[i] * (delta[i] - mean) + options_.weightDecay * logits_[i];
    adamM_[i] = kBeta1 * adamM_[i] + (1.0 - kBeta1) * g;
    adamV_[i] = kBeta2 * adamV_[i] + (1.0 - kBeta2) * g * g;
    logits_[i] -= options_.lr * (adamM_[i] / correction1) /
                  (std::sqrt(adamV_[i] / correction2) + kAdamEpsilon);
  }
}

std::vector<std::string> Famo::diagnosticNames() const {
  std::vector<std::string> names;
  for (const auto& task : tasks_) names.push_back("z_" + task.name);
  return names;
}

StrategyState Famo::state() const {
  if (logits_.empty()) throw std::logic_error("famo: state() called before attach()");
  // A second-pass step's pending losses never cross a checkpoint (taken
  // between steps), so previous_losses is kept only for next_step.
  const bool keep = options_.lossAfter == FamoLossAfter::kNextStep;
  return {{"logits", detail::stateVector(logits_)},
          {"adam_m", detail::stateVector(adamM_)},
          {"adam_v", detail::stateVector(adamV_)},
          {"adam_steps", torch::tensor(adamSteps_)},
          {"previous_losses", detail::stateVector(keep ? before_ : std::vector<double>{})}};
}

void Famo::loadState(const StrategyState& state) {
  if (logits_.empty()) throw std::logic_error("famo: loadState() called before attach()");
  auto vector = [&](const char* key, bool mayBeEmpty) {
    std::vector<double> v = detail::toDoubles(detail::requireState(state, key, 1, "famo"));
    if (v.size() != tasks_.size() && !(mayBeEmpty && v.empty())) {
      throw std::invalid_argument(fmt::format("famo: checkpoint '{}' has {} entries, expected {}",
                                              key, v.size(), tasks_.size()));
    }
    return v;
  };
  std::vector<double> logits = vector("logits", false), m = vector("adam_m", false),
                      v = vector("adam_v", false);
  std::vector<double> previous = vector("previous_losses", true);
  const int64_t steps = detail::requireState(state, "adam_steps", 0, "famo").item<int64_t>();
  if (steps < 0) throw std::invalid_argument("famo: checkpoint 'adam_steps' is negative");
  logits_ = std::move(logits);
  adamM_ = std::move(m);
  adamV_ = std::move(v);
  adamSteps_ = steps;
  before_ =
      options_.lossAfter == FamoLossAfter::kNextStep ? std::move(previous) : std::vector<double>{};
}

}  // namespace fulcrum
