#include "framework/schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace fulcrum {

namespace {

constexpr double kPi = 3.14159265358979323846;

/// `TASK/METRIC`'s task and metric indices, or a message saying what is wrong.
std::string resolve(const std::string& name, const std::vector<TaskSpec>& tasks,
                    ValidationCriterion& criterion) {
  if (name == "loss") {
    criterion.task = -1;
    criterion.metric = 0;
    criterion.higherIsBetter = false;
    return "";
  }
  const std::size_t slash = name.find('/');
  std::string taskNames;
  for (const auto& task : tasks) taskNames += (taskNames.empty() ? "" : ", ") + task.name;
  if (slash == std::string::npos) {
    return fmt::format(
        "'{}' is not a validation metric: write TASK/METRIC (e.g. {}/{}) or 'loss' (the mean "
        "of the tasks' validation losses)",
        name, tasks.empty() ? "task" : tasks[0].name,
        tasks.empty() ? "loss" : metricNames(tasks[0].kind).back());
  }
  const std::string taskName = name.substr(0, slash), metricName = name.substr(slash + 1);
  for (std::size_t t = 0; t < tasks.size(); ++t) {
    if (tasks[t].name != taskName) continue;
    const std::vector<std::string> metrics = metricNames(tasks[t].kind);
    const auto found = std::find(metrics.begin(), metrics.end(), metricName);
    if (found == metrics.end()) {
      return fmt::format("task '{}' ({}) has no metric '{}' (it has {})", taskName,
                         toString(tasks[t].kind), metricName, fmt::join(metrics, ", "));
    }
    criterion.task = static_cast<int64_t>(t);
    criterion.metric = found - metrics.begin();
    criterion.higherIsBetter = metricDirections(tasks[t].kind)[criterion.metric];
    return "";
  }
  return fmt::format("no task '{}' (tasks: {})", taskName, taskNames);
}

}  // namespace

double ValidationCriterion::valueIn(const std::vector<std::vector<double>>& values) const {
  if (task >= 0)
    return values.at(static_cast<std::size_t>(task)).at(static_cast<std::size_t>(metric));
  double sum = 0.0;
  int64_t count = 0;
  for (const auto& taskValues : values) {
    if (std::isnan(taskValues.at(0))) continue;  // no labelled row in the split
    sum += taskValues[0];
    ++count;
  }
  return count > 0 ? sum / static_cast<double>(count) : std::nan("");
}

ValidationCriterion readCriterion(const ConfigNode& node, const std::string& key,
                                  const std::string& fallback, const std::vector<TaskSpec>& tasks) {
  ValidationCriterion criterion;
  criterion.name = fallback.empty() ? node.requireString(key) : node.getString(key, fallback);
  const std::string problem = resolve(criterion.name, tasks, criterion);
  if (!problem.empty()) node.fail(key, problem);
  const std::string mode = node.getString("mode", "auto", {"auto", "min", "max"});
  if (mode != "auto") criterion.higherIsBetter = mode == "max";
  return criterion;
}

bool improves(double value, double best, bool higherIsBetter, double threshold, bool relative) {
  if (std::isnan(value)) return false;
  if (std::isnan(best)) return true;  // the first value
  if (higherIsBetter) return value > (relative ? best * (1.0 + threshold) : best + threshold);
  return value < (relative ? best * (1.0 - threshold) : best - threshold);
}

ScheduleSpec readScheduleSpec(const ConfigNode& node, const std::vector<TaskSpec>& tasks) {
  ScheduleSpec s;
  s.kind = node.getString("kind", s.kind,
                          {"constant", "step", "multistep", "exponential", "cosine", "plateau"});
  const std::string& kind = s.kind;
  const KindKeys own(kind, {{"step_size", {"step"}},
                            {"gamma", {"step", "multistep", "exponential"}},
                            {"milestones", {"multistep"}},
                            {"t_max", {"cosine"}},
                            {"min_lr", {"cosine", "plateau"}},
                            {"metric", {"plateau"}},
                            {"mode", {"plateau"}},
                            {"factor", {"plateau"}},
                            {"patience", {"plateau"}},
                            {"threshold", {"plateau"}},
                            {"threshold_mode", {"plateau"}},
                            {"cooldown", {"plateau"}}});
  own.refuseOthers(node);
  auto uses = [&own](const std::string& key) { return own.uses(key); };
  const std::string interval = node.getString("interval", "epoch", {"epoch", "step"});
  s.perStep = interval == "step";
  if (s.perStep && kind == "plateau")
    node.fail("interval",
              "plateau watches a validation metric, measured once per epoch: "
              "'interval: step' does not apply");
  if (uses("step_size")) s.stepSize = node.requireInt("step_size", 1, 1'000'000'000);
  if (uses("milestones")) {
    s.milestones = node.getIntList("milestones", {}, 1, 1'000'000'000);
    if (s.milestones.empty()) node.fail("milestones", "needs at least one epoch (or step)");
    if (!std::is_sorted(s.milestones.begin(), s.milestones.end()) ||
        std::adjacent_find(s.milestones.begin(), s.milestones.end()) != s.milestones.end())
      node.fail("milestones", "must increase strictly");
  }
  if (uses("gamma")) {
    s.gamma = kind == "exponential" ? node.requireDouble("gamma", 1e-12, 1.0)
                                    : node.getDouble("gamma", s.gamma, 1e-12, 1.0);
  }
  if (uses("t_max")) s.tMax = node.getInt("t_max", 0, 0, 1'000'000'000);
  if (uses("min_lr")) s.minLr = node.getDouble("min_lr", 0.0, 0.0, 1e3);
  s.warmup = node.getInt("warmup", 0, 0, 1'000'000'000);
  s.warmupStart = node.getDouble("warmup_start", s.warmupStart, 0.0, 1.0);
  if (node.has("warmup_start") && s.warmup == 0)
    node.fail("warmup_start", "needs 'warmup' (the warm-up's length) > 0");
  if (uses("metric")) {
    s.criterion = readCriterion(node, "metric", "", tasks);
    s.factor = node.getDouble("factor", s.factor, 1e-12, 0.999999);
    s.patience = node.getInt("patience", s.patience, 0, 1'000'000);
    s.threshold = node.getDouble("threshold", s.threshold, 0.0, 1e6);
    s.relativeThreshold = node.getString("threshold_mode", "rel", {"rel", "abs"}) == "rel";
    s.cooldown = node.getInt("cooldown", 0, 0, 1'000'000);
  }
  node.finish();
  return s;
}

LearningRateSchedule::LearningRateSchedule(ScheduleSpec spec, double baseLr, int64_t epochs,
                                           int64_t stepsPerEpoch)
    : spec_(std::move(spec)),
      baseLr_(baseLr),
      length_(spec_.perStep ? epochs * stepsPerEpoch : epochs) {
  plateau_.lr = baseLr;
}

void LearningRateSchedule::restore(const PlateauState& state) {
  plateau_ = state;
  if (plateau_.lr <= 0.0) plateau_.lr = baseLr_;  // a trial that starts at step 0
}

double LearningRateSchedule::rate(int64_t epoch, int64_t step) const {
  const int64_t t = spec_.perStep ? step : epoch;
  const int64_t w = spec_.warmup;
  const double ramp =
      t < w ? spec_.warmupStart + (1.0 - spec_.warmupStart) * static_cast<double>(t) / w : 1.0;
  const std::string& kind = spec_.kind;
  double lr = baseLr_;
  if (kind == "step") {
    lr = baseLr_ * std::pow(spec_.gamma, static_cast<double>(t / spec_.stepSize));
  } else if (kind == "multistep") {
    const auto passed = std::upper_bound(spec_.milestones.begin(), spec_.milestones.end(), t) -
                        spec_.milestones.begin();
    lr = baseLr_ * std::pow(spec_.gamma, static_cast<double>(passed));
  } else if (kind == "exponential") {
    lr = baseLr_ * std::pow(spec_.gamma, static_cast<double>(t));
  } else if (kind == "cosine") {
    // The half cosine starts after the warm-up (PyTorch's SequentialLR of
    // LinearLR and CosineAnnealingLR) and stays at η_min after t_max.
    const int64_t length = spec_.tMax > 0 ? spec_.tMax : std::max<int64_t>(length_ - w, 1);
    const double u = static_cast<double>(std::clamp<int64_t>(t - w, 0, length)) / length;
    lr = spec_.minLr + (baseLr_ - spec_.minLr) * (1.0 + std::cos(kPi * u)) / 2.0;
  } else if (kind == "plateau") {
    lr = plateau_.lr;
  }
  return ramp * lr;
}

void LearningRateSchedule::endEpoch(int64_t epoch,
                                    const std::vector<std::vector<double>>& validation) {
  (void)epoch;
  if (spec_.kind != "plateau") return;
  // PyTorch's ReduceLROnPlateau.step(metric), with its eps of 1e-8.
  PlateauState& p = plateau_;
  const double value = spec_.criterion.valueIn(validation);
  if (improves(value, p.best, spec_.criterion.higherIsBetter, spec_.threshold,
               spec_.relativeThreshold)) {
    p.best = value;
    p.badEpochs = 0;
  } else {
    ++p.badEpochs;
  }
  if (p.cooldownLeft > 0) {
    --p.cooldownLeft;
    p.badEpochs = 0;
  }
  if (p.badEpochs > spec_.patience) {
    const double reduced = std::max(p.lr * spec_.factor, spec_.minLr);
    if (p.lr - reduced > 1e-8) p.lr = reduced;
    p.cooldownLeft = spec_.cooldown;
    p.badEpochs = 0;
  }
}

EarlyStoppingSpec readEarlyStoppingSpec(const ConfigNode& node,
                                        const std::vector<TaskSpec>& tasks) {
  EarlyStoppingSpec s;
  if (node.keys().empty()) return s;
  s.enabled = true;
  s.criterion = readCriterion(node, "metric", "", tasks);
  s.patience = node.getInt("patience", s.patience, 1, 1'000'000);
  s.minDelta = node.getDouble("min_delta", 0.0, 0.0, 1e300);
  s.minEpochs = node.getInt("min_epochs", 0, 0, 1'000'000);
  node.finish();
  return s;
}

std::string EarlyStopping::endEpoch(int64_t epoch,
                                    const std::vector<std::vector<double>>& validation) {
  if (!spec_.enabled) return "";
  const double value = spec_.criterion.valueIn(validation);
  if (improves(value, state_.best, spec_.criterion.higherIsBetter, spec_.minDelta,
               /*relative=*/false)) {
    state_.best = value;
    state_.bestEpoch = epoch;
    state_.badEpochs = 0;
    return "";
  }
  ++state_.badEpochs;
  if (state_.badEpochs < spec_.patience || epoch + 1 < spec_.minEpochs) return "";
  return fmt::format(
      "val {} has not improved for {} epoch(s) (train.early_stopping.patience {}); {}",
      spec_.criterion.name, state_.badEpochs, spec_.patience,
      state_.bestEpoch >= 0
          ? fmt::format("best {:.6g} after epoch {}", state_.best, state_.bestEpoch + 1)
          : std::string("no finite value yet"));
}

}  // namespace fulcrum
