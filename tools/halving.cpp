#include "tools/halving.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include "framework/sweep.h"
#include "framework/task.h"
#include "results/trial_file.h"
#include "tools/commands.h"

namespace fulcrum {

namespace fs = std::filesystem;

namespace {

/// The record's name: what the halving is over (the trials, in order) and how.
std::string recordName(const std::vector<TrialSpec>& trials, const HalvingSpec& spec) {
  std::string text =
      fmt::format("{} {} {} {} {}\n", spec.asynchronous ? "asha" : "sync", spec.eta, spec.minEpochs,
                  spec.criterion.name, spec.criterion.higherIsBetter);
  for (const TrialSpec& trial : trials)
    text += trial.id + " " + std::to_string(trial.spec.seed) + "\n";
  const std::string hash = fmt::format("{:016x}", fnv1a64(text)).substr(0, 12);
  const fs::path folder = fs::path(trials.front().resultPath).parent_path();
  return (folder / fmt::format("{}-halving-{}.yaml", trials.front().spec.name, hash)).string();
}

/// Writes `text` to `path` through a synced temporary file renamed over it.
void writeAtomically(const std::string& path, const std::string& text) {
  const std::string part = fmt::format("{}.part-{}", path, ::getpid());
  const int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::runtime_error(fmt::format("cannot write '{}': {}", part, std::strerror(errno)));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ok && ::fsync(fd) == 0;
  const int error = errno;
  ok = ::close(fd) == 0 && ok;
  if (!ok || std::rename(part.c_str(), path.c_str()) != 0) {
    const int why = ok ? errno : error;
    ::unlink(part.c_str());
    throw std::runtime_error(
        fmt::format("cannot write the halving record '{}': {}", path, std::strerror(why)));
  }
}

std::string formatValue(double value) {
  return std::isnan(value) ? "nan" : fmt::format("{:.4f}", value);
}

}  // namespace

HalvingRun::HalvingRun(const std::vector<TrialSpec>& trials, HalvingSpec spec, bool retryFailed)
    : trials_(trials),
      spec_(std::move(spec)),
      retryFailed_(retryFailed),
      groups_(configurationGroups(trials)),
      groupOf_(trials.size()),
      recordPath_(recordName(trials, spec_)) {
  for (std::size_t g = 0; g < groups_.size(); ++g)
    for (std::size_t t : groups_[g]) groupOf_[t] = g;
  load();
}

std::string HalvingRun::lock() {
  lock_.emplace(recordPath_);
  if (lock_->held()) return "";
  if (lock_->error() != 0)
    return fmt::format("cannot create the lock file '{}.lock': {}", recordPath_,
                       std::strerror(lock_->error()));
  return fmt::format("another sweep runs this halving now: {}.lock is held", recordPath_);
}

void HalvingRun::load() {
  std::error_code code;
  if (!fs::exists(recordPath_, code)) return;
  const std::string problem = "; move it away to start the halving afresh";
  YAML::Node root;
  try {
    root = YAML::LoadFile(recordPath_);
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(
        fmt::format("halving record '{}' does not parse: {}{}", recordPath_, e.what(), problem));
  }
  try {
    for (const YAML::Node& item : root["promotions"]) {
      Promotion promotion{item["rung"].as<std::size_t>(), item["configuration"].as<std::size_t>(),
                          item["value"].as<double>()};
      if (promotion.rung + 1 >= spec_.rungs.size() || promotion.configuration >= groups_.size() ||
          reached(promotion.configuration) != promotion.rung)
        throw std::runtime_error(fmt::format("promotion of configuration {} from rung {}",
                                             promotion.configuration, promotion.rung));
      promotions_.push_back(promotion);
    }
    if (root["epochs_trained"]) recordedEpochs_ = root["epochs_trained"].as<int64_t>();
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("halving record '{}' is not one of this sweep: {}{}",
                                         recordPath_, e.what(), problem));
  }
}

void HalvingRun::save() const {
  std::ostringstream text;
  text << "# fulcrum sweep: successive halving's promotions, recorded as they are decided;\n"
          "# a rerun continues from them. Removing this file restarts the ranking.\n";
  text << fmt::format("method: {}\nmetric: {}\nhigher_is_better: {}\neta: {}\nrungs: [{}]\n",
                      spec_.asynchronous ? "asha" : "synchronous", spec_.criterion.name,
                      spec_.criterion.higherIsBetter, spec_.eta, fmt::join(spec_.rungs, ", "));
  text << "configurations:  # the trial ids of each\n";
  for (const auto& group : groups_) {
    std::vector<std::string> ids;
    for (std::size_t t : group) ids.push_back(trials_[t].id);
    text << fmt::format("  - [{}]\n", fmt::join(ids, ", "));
  }
  text << "promotions:\n";
  for (const Promotion& p : promotions_)
    text << fmt::format("  - {{rung: {}, configuration: {}, value: {:.17g}}}\n", p.rung,
                        p.configuration, p.value);
  if (recordedEpochs_) text << fmt::format("epochs_trained: {}\n", *recordedEpochs_);
  writeAtomically(recordPath_, text.str());
}

const HalvingRun::Progress& HalvingRun::progress(std::size_t trial) {
  const auto found = progress_.find(trial);
  if (found != progress_.end()) return found->second;
  Progress& p = progress_[trial];
  const TrialSpec& spec = trials_[trial];
  const TrialIdentity identity{spec.id, spec.spec.seed};
  p.status = readTrialState(spec.resultPath, &identity).status;
  if (p.status != "completed" && p.status != "paused") return p;
  try {
    results::TrialReader reader(spec.resultPath);
    p.epochs = static_cast<int64_t>(reader.curve("epochs/epoch").size());
    std::vector<std::vector<std::vector<double>>> curves;  // [task][metric][epoch]
    for (const TaskSpec& task : spec.spec.tasks) {
      curves.emplace_back();
      for (const std::string& metric : metricNames(task.kind)) {
        const std::string name = fmt::format("epochs/val/{}/{}", task.name, metric);
        curves.back().push_back(reader.hasCurve(name) ? reader.curve(name) : std::vector<double>{});
      }
    }
    for (int64_t e = 0; e < p.epochs; ++e) {
      std::vector<std::vector<double>> values(curves.size());
      for (std::size_t t = 0; t < curves.size(); ++t)
        for (const auto& curve : curves[t])
          values[t].push_back(e < static_cast<int64_t>(curve.size()) ? curve[e] : std::nan(""));
      p.values.push_back(spec_.criterion.valueIn(values));
    }
  } catch (const results::FileError& e) {
    p.status = "unreadable";
    p.epochs = 0;
    p.values.clear();
  }
  return p;
}

bool HalvingRun::doneAt(std::size_t trial, std::size_t rung) {
  const Progress& p = progress(trial);
  if (p.status == "completed" || p.status == "unreadable" || p.status == "foreign") return true;
  if (p.status == "failed") return !retryFailed_ || handedOut_.count({trial, rung}) > 0;
  return p.status == "paused" && p.epochs >= spec_.rungs[rung];
}

bool HalvingRun::groupDoneAt(std::size_t group, std::size_t rung) {
  for (std::size_t t : groups_[group])
    if (!doneAt(t, rung)) return false;
  return true;
}

double HalvingRun::valueAt(std::size_t trial, std::size_t rung) {
  const Progress& p = progress(trial);
  if (p.values.empty()) return std::nan("");
  const int64_t epoch = std::min<int64_t>(spec_.rungs[rung], p.epochs);
  return p.values[static_cast<std::size_t>(epoch - 1)];
}

double HalvingRun::groupValue(std::size_t group, std::size_t rung) {
  double sum = 0.0;
  std::size_t count = 0;
  for (std::size_t t : groups_[group]) {
    const double value = valueAt(t, rung);
    if (std::isnan(value)) continue;
    sum += value;
    ++count;
  }
  return count > 0 ? sum / static_cast<double>(count) : std::nan("");
}

std::size_t HalvingRun::reached(std::size_t group) const {
  std::size_t rung = 0;
  for (const Promotion& p : promotions_)
    if (p.configuration == group) rung = std::max(rung, p.rung + 1);
  return rung;
}

bool HalvingRun::decided(std::size_t rung) const {
  for (const Promotion& p : promotions_)
    if (p.rung == rung) return true;
  return false;
}

void HalvingRun::promote(std::size_t rung, std::size_t group, double value) {
  promotions_.push_back({rung, group, value});
}

std::vector<std::size_t> HalvingRun::membersOf(std::size_t rung) const {
  std::vector<std::size_t> members;
  for (std::size_t g = 0; g < groups_.size(); ++g)
    if (reached(g) >= rung) members.push_back(g);
  return members;
}

void HalvingRun::decide(std::size_t rung, const std::vector<std::size_t>& members) {
  std::vector<double> values;
  for (std::size_t g : members) values.push_back(groupValue(g, rung));
  for (std::size_t position : bestOf(values, synchronousSurvivors(members.size(), spec_.eta),
                                     spec_.criterion.higherIsBetter))
    promote(rung, members[position], values[position]);
}

std::vector<SweepJob> HalvingRun::jobsOf(std::size_t group, std::size_t rung) {
  std::vector<SweepJob> jobs;
  const bool last = rung + 1 == spec_.rungs.size();
  for (std::size_t t : groups_[group]) {
    if (doneAt(t, rung) || !handedOut_.insert({t, rung}).second) continue;
    jobs.push_back({t, last ? 0 : spec_.rungs[rung]});
  }
  return jobs;
}

std::vector<SweepJob> HalvingRun::next(std::size_t running) {
  if (stopped_) return {};
  if (!spec_.asynchronous) return running > 0 ? std::vector<SweepJob>{} : synchronousNext();
  std::vector<SweepJob> jobs = asynchronousNext();
  if (!jobs.empty()) outstanding_[groupOf_[jobs.front().trial]] += jobs.size();
  return jobs;
}

void HalvingRun::ended(std::size_t trial) {
  progress_.erase(trial);
  const auto found = outstanding_.find(groupOf_[trial]);
  if (found != outstanding_.end() && found->second > 0) --found->second;
}

std::vector<SweepJob> HalvingRun::synchronousNext() {
  const std::size_t last = spec_.rungs.size() - 1;
  for (std::size_t k = 0; k <= last; ++k) {
    if (k < last && decided(k)) continue;
    const std::vector<std::size_t> members = membersOf(k);
    std::vector<SweepJob> jobs;
    bool done = true;
    for (std::size_t g : members) {
      for (const SweepJob& job : jobsOf(g, k)) jobs.push_back(job);
      done = done && groupDoneAt(g, k);
    }
    if (!jobs.empty() || !done || k == last) return jobs;  // running, stalled, or finished
    decide(k, members);
    save();
  }
  return {};
}

std::vector<SweepJob> HalvingRun::asynchronousNext() {
  auto idle = [this](std::size_t g) { return outstanding_[g] == 0; };
  // Configurations promoted earlier whose trials have not reached their rung
  // (an interrupted run) go on first.
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const std::size_t k = reached(g);
    if (k == 0 || !idle(g)) continue;
    std::vector<SweepJob> jobs = jobsOf(g, k);
    if (!jobs.empty()) return jobs;
  }
  // A promotion, from the highest rung down.
  for (std::size_t k = spec_.rungs.size() - 1; k-- > 0;) {
    std::vector<std::size_t> completed;
    std::vector<double> values;
    std::vector<bool> promoted;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      const std::size_t at = reached(g);
      if (at < k || (at == k && !idle(g)) || !groupDoneAt(g, k)) continue;
      completed.push_back(g);
      values.push_back(groupValue(g, k));
      promoted.push_back(at > k);
    }
    const std::optional<std::size_t> position =
        ashaPromotion(values, promoted, spec_.eta, spec_.criterion.higherIsBetter);
    if (!position) continue;
    const std::size_t g = completed[*position];
    promote(k, g, values[*position]);
    save();
    std::vector<SweepJob> jobs = jobsOf(g, k + 1);
    if (!jobs.empty()) return jobs;
    return asynchronousNext();  // nothing to train (it ended early): look again
  }
  // A configuration not started yet.
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    if (reached(g) != 0 || !idle(g)) continue;
    std::vector<SweepJob> jobs = jobsOf(g, 0);
    if (!jobs.empty()) return jobs;
  }
  return {};
}

HalvingRun::Step HalvingRun::synchronousStep(bool record) {
  Step step;
  const std::size_t last = spec_.rungs.size() - 1;
  for (std::size_t k = 0; k <= last; ++k) {
    if (k < last && decided(k)) continue;
    step.rung = k;
    const std::vector<std::size_t> members = membersOf(k);
    for (std::size_t g : members)
      for (std::size_t t : groups_[g])
        if (!doneAt(t, k)) step.jobs.push_back({t, k == last ? 0 : spec_.rungs[k]});
    if (!step.jobs.empty()) return step;
    if (k == last) {
      step.finished = true;
      return step;
    }
    decide(k, members);
    if (record) save();
    step.opened = true;
  }
  return step;
}

bool HalvingRun::finished() {
  for (const auto& [group, count] : outstanding_)
    if (count > 0) return false;
  const std::size_t last = spec_.rungs.size() - 1;
  for (std::size_t g = 0; g < groups_.size(); ++g)
    if (!groupDoneAt(g, reached(g))) return false;
  if (!spec_.asynchronous) {
    for (std::size_t k = 0; k < last; ++k)
      if (!decided(k)) return false;
    return true;
  }
  for (std::size_t k = 0; k < last; ++k) {
    std::vector<double> values;
    std::vector<bool> promoted;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      if (reached(g) < k) continue;
      values.push_back(groupValue(g, k));
      promoted.push_back(reached(g) > k);
    }
    if (ashaPromotion(values, promoted, spec_.eta, spec_.criterion.higherIsBetter)) return false;
  }
  return true;
}

int64_t HalvingRun::epochsTrained() {
  int64_t epochs = 0;
  for (std::size_t t = 0; t < trials_.size(); ++t) {
    progress_.erase(t);
    epochs += progress(t).epochs;
  }
  return epochs;
}

std::string HalvingRun::describe(std::size_t group) const {
  const TrialSpec& first = trials_[groups_[group].front()];
  std::string text =
      fmt::format("configuration {} (#{} {}", group, first.index, first.spec.strategyName);
  for (const auto& [key, value] : first.values) {
    if (key == "seed" || key == "cross_validation" || key == "strategy" || key == "strategy.name")
      continue;
    text += fmt::format(" {}={}", key.substr(key.rfind('.') + 1), value);
  }
  return text + ")";
}

void HalvingRun::printSummary(std::ostream& out, const std::string& experiment, bool record) {
  const std::size_t last = spec_.rungs.size() - 1;
  const std::string criterion = "val " + spec_.criterion.name;
  out << fmt::format(
      "\nsuccessive halving ({}, eta {}, rungs at epochs {}), ranked by {} ({} is better)\n",
      spec_.asynchronous ? "asynchronous: ASHA" : "synchronous", spec_.eta,
      fmt::join(spec_.rungs, ", "), criterion, spec_.criterion.higherIsBetter ? "higher" : "lower");
  out << fmt::format("  record {}\n", recordPath_);
  out << fmt::format("  {:>4}  {:>6}  {:>14}  {:>8}\n", "rung", "epochs", "configurations",
                     "promoted");
  for (std::size_t k = 0; k <= last; ++k) {
    const std::size_t members = membersOf(k).size();
    std::size_t promoted = 0;
    for (const Promotion& p : promotions_) promoted += p.rung == k ? 1 : 0;
    out << fmt::format("  {:>4}  {:>6}  {:>14}  {:>8}\n", k, spec_.rungs[k], members,
                       k == last ? "-" : std::to_string(promoted));
  }
  const bool done = finished();
  // The pick: the best configuration of the highest rung any has completed.
  std::optional<std::size_t> pick;
  std::size_t pickRung = 0;
  for (std::size_t k = last + 1; k-- > 0 && !pick;) {
    std::vector<std::size_t> members;
    std::vector<double> values;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      if (reached(g) < k || !groupDoneAt(g, k)) continue;
      members.push_back(g);
      values.push_back(groupValue(g, k));
    }
    const std::vector<std::size_t> best = bestOf(values, 1, spec_.criterion.higherIsBetter);
    if (!best.empty() && !std::isnan(values[best.front()])) {
      pick = members[best.front()];
      pickRung = k;
    }
  }
  const int64_t trained = epochsTrained();
  if (done && record && !recordedEpochs_) {
    recordedEpochs_ = trained;
    save();
  }
  const int64_t grid = static_cast<int64_t>(trials_.size()) * spec_.rungs.back();
  if (!done) out << "  not finished: a rerun continues it\n";
  if (pick) {
    out << fmt::format("  {}: {}: {} {} after {} epochs\n", done ? "picked" : "best so far",
                       describe(*pick), criterion, formatValue(groupValue(*pick, pickRung)),
                       spec_.rungs[pickRung]);
  }
  const int64_t spent = recordedEpochs_ ? *recordedEpochs_ : trained;
  out << fmt::format("  epochs trained by the halving: {} of the full grid's {} ({:.0f}%)\n", spent,
                     grid, 100.0 * static_cast<double>(spent) / static_cast<double>(grid));
  if (!done || !pick) return;
  // The pick's rank in the full grid, once every trial has trained to the end.
  bool full = true;
  for (std::size_t t = 0; t < trials_.size() && full; ++t) full = progress(t).status == "completed";
  if (!full) {
    out << fmt::format(
        "  its rank in the full grid: train every configuration to the end with `fulcrum sweep "
        "{} --no-halving` (it continues the paused trials), then this summary shows it\n",
        experiment);
    return;
  }
  std::vector<double> values;
  for (std::size_t g = 0; g < groups_.size(); ++g) values.push_back(groupValue(g, last));
  const std::vector<std::size_t> order =
      bestOf(values, values.size(), spec_.criterion.higherIsBetter);
  const std::size_t rank =
      static_cast<std::size_t>(std::find(order.begin(), order.end(), *pick) - order.begin()) + 1;
  out << fmt::format(
      "  in the full grid ({} configurations, {} epochs each): the pick ranks {} of {} by {}; the "
      "best is {}: {}\n",
      groups_.size(), spec_.rungs.back(), rank, groups_.size(), criterion, describe(order.front()),
      formatValue(values[order.front()]));
}

}  // namespace fulcrum
