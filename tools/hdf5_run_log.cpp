#include "tools/hdf5_run_log.h"

#include <fmt/format.h>

#include <cmath>

namespace fulcrum {

namespace {

/// The values of `curves` in the file an interrupted run left at `path`,
/// up to its checkpoint: steps before `step`, epochs before `epoch`; keeps
/// the file's `start_time` in `attributes` (the new one becomes
/// `resume_time`). Throws results::FileError if the file cannot continue.
std::vector<std::vector<double>> curvesBefore(const std::string& path,
                                              const std::vector<std::string>& curves, int64_t step,
                                              int64_t epoch, results::Attributes& attributes) {
  const results::TrialReader reader(path);
  auto countBelow = [&](const std::string& index, int64_t limit) {
    const std::vector<double> values =
        reader.hasCurve(index) ? reader.curve(index) : std::vector<double>{};
    std::size_t count = 0;
    while (count < values.size() && values[count] < static_cast<double>(limit)) ++count;
    return count;
  };
  const std::size_t epochs = countBelow("epochs/epoch", epoch);
  if (epochs != static_cast<std::size_t>(epoch)) {
    throw results::FileError(
        fmt::format("{}: cannot continue this trial: the file holds {} epoch(s), its checkpoint "
                    "was taken after epoch {}; remove the checkpoint to start over",
                    path, epochs, epoch));
  }
  const std::size_t steps = countBelow("steps/step", step);
  const std::size_t gradients = countBelow("gradients/step", step);
  std::vector<std::vector<double>> values;
  for (const std::string& name : curves) {
    const std::size_t keep = name.rfind("epochs/", 0) == 0      ? epochs
                             : name.rfind("gradients/", 0) == 0 ? gradients
                                                                : steps;
    std::vector<double> curve = reader.hasCurve(name) ? reader.curve(name) : std::vector<double>{};
    if (curve.size() < keep) {
      throw results::FileError(
          fmt::format("{}: cannot continue this trial: curve '{}' holds {} values, {} expected; "
                      "remove the checkpoint to start over",
                      path, name, curve.size(), keep));
    }
    curve.resize(keep);
    values.push_back(std::move(curve));
  }
  const std::string started = reader.text("start_time");
  if (!started.empty()) {
    attributes.text["resume_time"] = attributes.text["start_time"];
    attributes.text["start_time"] = started;
  }
  return values;
}

}  // namespace

Hdf5RunLog::Hdf5RunLog(std::string path, bool overwrite, double flushSeconds)
    : path_(std::move(path)), overwrite_(overwrite), flushSeconds_(flushSeconds) {}

void Hdf5RunLog::begin(const TrialDescription& d) {
  // Curves are declared in blocks whose first index is remembered, so that
  // appending a step is index arithmetic, not name lookups.
  std::vector<std::string> curves = {"steps/step", "steps/epoch"};
  losses_ = curves.size();
  for (const auto& task : d.tasks) curves.push_back("steps/loss/" + task);
  weights_ = curves.size();
  for (const auto& task : d.tasks) curves.push_back("steps/weight/" + task);
  times_ = curves.size();
  for (const auto& name : d.timings) curves.push_back("steps/time/" + name);
  diags_ = curves.size();
  for (const auto& name : d.diagnostics) curves.push_back("steps/diagnostics/" + name);
  epochIndex_ = curves.size();
  curves.push_back("epochs/epoch");
  epochSeconds_ = curves.size();
  curves.push_back("epochs/seconds");
  skippedIndex_ = curves.size();
  countsSkipped_ = d.countsSkippedSteps;
  if (countsSkipped_) curves.push_back("epochs/skipped_steps");
  metrics_ = curves.size();
  skippedTotal_ = 0;
  for (const auto& split : d.splits) {
    for (std::size_t t = 0; t < d.tasks.size(); ++t) {
      for (const auto& metric : d.metrics[t]) {
        curves.push_back(fmt::format("epochs/{}/{}/{}", split, d.tasks[t], metric));
      }
    }
  }
  gradients_ = 0;
  if (d.gradientInterval > 0) {
    // Order as GradientRecord: step, epoch, norms, cosines, the two update norms.
    gradients_ = curves.size();
    curves.push_back("gradients/step");
    curves.push_back("gradients/epoch");
    for (const auto& task : d.tasks) curves.push_back("gradients/norm/" + task);
    for (std::size_t i = 0; i < d.tasks.size(); ++i) {
      for (std::size_t j = i + 1; j < d.tasks.size(); ++j) {
        curves.push_back(fmt::format("gradients/cosine/{}/{}", d.tasks[i], d.tasks[j]));
      }
    }
    curves.push_back("gradients/direction_norm");
    curves.push_back("gradients/step_norm");
  }
  tasks_ = d.tasks.size();
  timings_ = d.timings.size();
  diagnostics_ = d.diagnostics.size();
  splits_ = d.splits.size();
  for (const auto& names : d.metrics) metricCounts_.push_back(names.size());

  results::Attributes attributes{d.text, d.integers};
  attributes.text["tasks"] = fmt::format("{}", fmt::join(d.tasks, ","));
  attributes.text["splits"] = fmt::format("{}", fmt::join(d.splits, ","));
  // "task/metric=higher|lower" per metric: results/ reads directions from here.
  std::vector<std::string> directions;
  for (std::size_t t = 0; t < d.tasks.size() && t < d.higherIsBetter.size(); ++t) {
    for (std::size_t m = 0; m < d.metrics[t].size() && m < d.higherIsBetter[t].size(); ++m) {
      directions.push_back(fmt::format("{}/{}={}", d.tasks[t], d.metrics[t][m],
                                       d.higherIsBetter[t][m] ? "higher" : "lower"));
    }
  }
  if (!directions.empty())
    attributes.text["metric_directions"] = fmt::format("{}", fmt::join(directions, ","));
  std::vector<std::vector<double>> initial;
  if (d.resumeEpoch > 0) {
    initial = curvesBefore(path_, curves, d.resumeStep, d.resumeEpoch, attributes);
    if (countsSkipped_) {
      for (double skipped : initial[skippedIndex_]) skippedTotal_ += static_cast<int64_t>(skipped);
    }
  }
  writer_ = std::make_unique<results::TrialWriter>(
      path_, attributes, curves, overwrite_ || d.resumeEpoch > 0, std::move(initial));
  stepIndex_ = 0;
  stepEpoch_ = 1;
  lastFlush_ = std::chrono::steady_clock::now();
}

void Hdf5RunLog::append(std::size_t first, const std::vector<double>& values, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    writer_->append(first + i, i < values.size() ? values[i] : std::nan(""));
  }
}

void Hdf5RunLog::flushIfDue() {
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - lastFlush_).count() >= flushSeconds_) {
    writer_->flush();
    lastFlush_ = now;
  }
}

void Hdf5RunLog::step(const StepRecord& r) {
  writer_->append(stepIndex_, static_cast<double>(r.step));
  writer_->append(stepEpoch_, static_cast<double>(r.epoch));
  append(losses_, r.losses, tasks_);
  append(weights_, r.weights, tasks_);
  append(times_, r.timings, timings_);
  append(diags_, r.diagnostics, diagnostics_);
  flushIfDue();
}

void Hdf5RunLog::gradients(const GradientRecord& r) {
  if (gradients_ == 0) return;
  std::size_t index = gradients_;
  writer_->append(index++, static_cast<double>(r.step));
  writer_->append(index++, static_cast<double>(r.epoch));
  append(index, r.norms, tasks_);
  index += tasks_;
  const std::size_t pairs = tasks_ * (tasks_ - 1) / 2;
  append(index, r.cosines, pairs);
  index += pairs;
  writer_->append(index++, r.directionNorm);
  writer_->append(index, r.stepNorm);
}

void Hdf5RunLog::epoch(const EpochRecord& r) {
  writer_->append(epochIndex_, static_cast<double>(r.epoch));
  writer_->append(epochSeconds_, r.seconds);
  if (countsSkipped_) {
    writer_->append(skippedIndex_, static_cast<double>(r.skippedSteps));
    skippedTotal_ += r.skippedSteps;
  }
  std::size_t index = metrics_;
  for (std::size_t s = 0; s < splits_; ++s) {
    for (std::size_t t = 0; t < tasks_; ++t) {
      for (std::size_t m = 0; m < metricCounts_[t]; ++m) {
        const bool present =
            s < r.values.size() && t < r.values[s].size() && m < r.values[s][t].size();
        writer_->append(index++, present ? r.values[s][t][m] : std::nan(""));
      }
    }
  }
  writer_->flush();
  lastFlush_ = std::chrono::steady_clock::now();
}

void Hdf5RunLog::stoppedEarly(int64_t epochs, const std::string& reason) {
  endAttributes_.integers["stopped_epoch"] = epochs;
  endAttributes_.text["stop_reason"] = reason;
}

void Hdf5RunLog::end(const std::string& status, const std::string& error) {
  results::Attributes extra = endAttributes_;
  if (countsSkipped_) extra.integers["skipped_steps"] = skippedTotal_;
  if (writer_) writer_->finish(status, error, extra);
  writer_.reset();
}

}  // namespace fulcrum
