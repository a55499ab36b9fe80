#include "results/comparison.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#include "results/json.h"
#include "results/trial_file.h"

namespace fulcrum::results {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string metricOf(const std::string& column) { return column.substr(column.rfind('/') + 1); }
std::string taskOf(const std::string& column) { return column.substr(0, column.rfind('/')); }

/// Trial `score`'s test values at epoch index `index` (every column).
std::map<std::string, double> valuesAtIndex(const TrialScore& score, std::ptrdiff_t index) {
  std::map<std::string, double> values;
  for (const auto& [column, test] : score.testCurves) {
    values[column] = index >= 0 && static_cast<std::size_t>(index) < test.size()
                         ? test[static_cast<std::size_t>(index)]
                         : kNaN;
  }
  return values;
}

/// The epoch number logged at `index` ("-" for none).
std::string epochAt(const TrialScore& score, std::ptrdiff_t index) {
  if (index < 0) return "-";
  return std::to_string(static_cast<std::size_t>(index) < score.epochs.size()
                            ? score.epochs[static_cast<std::size_t>(index)]
                            : static_cast<int64_t>(index));
}

/// The columns to show: those `wanted` names (as columns or metric names),
/// or by default every metric but "loss" (loss where a task has nothing else).
std::vector<std::string> chooseColumns(const std::set<std::string>& available,
                                       const std::vector<std::string>& wanted) {
  std::vector<std::string> columns;
  if (wanted.empty()) {
    std::set<std::string> tasksWithMetric;
    for (const std::string& column : available) {
      if (metricOf(column) != "loss") tasksWithMetric.insert(taskOf(column));
    }
    for (const std::string& column : available) {
      if (metricOf(column) != "loss" || tasksWithMetric.count(taskOf(column)) == 0)
        columns.push_back(column);
    }
    return columns;
  }
  for (const std::string& name : wanted) {
    bool matched = false;
    for (const std::string& column : available) {
      if (column == name || metricOf(column) == name) {
        matched = true;
        if (std::find(columns.begin(), columns.end(), column) == columns.end())
          columns.push_back(column);
      }
    }
    if (!matched) {
      throw std::invalid_argument(
          fmt::format("--metric '{}' names no metric of the trials (known: {})", name,
                      fmt::join(available, ", ")));
    }
  }
  return columns;
}

/// A replicate of a configuration: its seed and cross-validation fold (-1: none).
using Replicate = std::pair<int64_t, int64_t>;
Replicate replicateOf(const TrialScore& score) { return {score.seed, score.fold}; }
/// "3", or "3 fold 1" under cross-validation.
std::string replicateText(const Replicate& replicate) {
  return replicate.second < 0 ? std::to_string(replicate.first)
                              : fmt::format("{} fold {}", replicate.first, replicate.second);
}

double valueAt(const std::map<std::string, double>& values, const std::string& column) {
  const auto found = values.find(column);
  return found == values.end() ? kNaN : found->second;
}

std::string contextText(const std::vector<std::pair<std::string, std::string>>& context) {
  std::string text;
  for (const auto& [key, value] : context)
    text += fmt::format("{}{}={}", text.empty() ? "" : " ", key, value);
  return text;
}

/// `text` as a number if the whole of it is one (a swept "1e-3"), else false.
bool asNumber(const std::string& text, double& value) {
  if (text.empty()) return false;
  char* end = nullptr;
  value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && std::isfinite(value);
}

/// Swept values in the order a reader expects: numbers by value (1e-3 <
/// 3e-3 < 1e-2), before any text; text alphabetically.
bool valueLess(const std::string& a, const std::string& b) {
  double x = 0.0, y = 0.0;
  const bool numberA = asNumber(a, x), numberB = asNumber(b, y);
  if (numberA && numberB && x != y) return x < y;
  if (numberA != numberB) return numberA;
  return a < b;
}

using Context = std::vector<std::pair<std::string, std::string>>;

/// Orders (context, label) groups: contexts key by key with valueLess, then labels.
struct GroupLess {
  bool operator()(const std::pair<Context, std::string>& a,
                  const std::pair<Context, std::string>& b) const {
    const std::size_t n = std::min(a.first.size(), b.first.size());
    for (std::size_t i = 0; i < n; ++i) {
      if (a.first[i].first != b.first[i].first) return a.first[i].first < b.first[i].first;
      if (valueLess(a.first[i].second, b.first[i].second)) return true;
      if (valueLess(b.first[i].second, a.first[i].second)) return false;
    }
    if (a.first.size() != b.first.size()) return a.first.size() < b.first.size();
    return a.second < b.second;
  }
};

/// A reader's message without its leading "<path>: " (the listing names the file).
std::string withoutPath(const std::string& message, const std::string& path) {
  const std::string prefix = path + ": ";
  return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
}

}  // namespace

namespace {

/// The attribute metric_directions ("task/metric=higher,task/metric=lower")
/// as column → higher is better; empty for files without it.
std::map<std::string, bool> recordedDirections(const TrialReader& reader) {
  std::map<std::string, bool> directions;
  std::stringstream list(reader.text("metric_directions", ""));
  std::string item;
  while (std::getline(list, item, ',')) {
    const auto equals = item.rfind('=');
    if (equals == std::string::npos) continue;
    const std::string value = item.substr(equals + 1);
    if (value == "higher" || value == "lower")
      directions[item.substr(0, equals)] = value == "higher";
  }
  return directions;
}

}  // namespace

std::string Selection::name() const {
  switch (kind) {
    case Kind::kFinal:
      return "final";
    case Kind::kLast:
      return fmt::format("last:{}", last);
    case Kind::kBestDeltaM:
      return "best:delta_m";
    case Kind::kBestMetric:
      return "best:" + metric;
    case Kind::kBest:
      break;
  }
  return "best";
}

std::string Selection::shownName() const { return kind == Kind::kLast ? "last" : "best"; }

Selection parseSelection(const std::string& text) {
  Selection selection;
  const std::string known =
      "known: final, best (per metric), best:delta_m, best:TASK/METRIC, last:K";
  if (text == "best") return selection;
  if (text == "final") {
    selection.kind = Selection::Kind::kFinal;
    return selection;
  }
  if (text == "best:delta_m") {
    selection.kind = Selection::Kind::kBestDeltaM;
    return selection;
  }
  if (text.rfind("best:", 0) == 0) {
    selection.kind = Selection::Kind::kBestMetric;
    selection.metric = text.substr(5);
    const std::size_t slash = selection.metric.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == selection.metric.size())
      throw std::invalid_argument(
          fmt::format("--select '{}': best: takes delta_m or a validation column TASK/METRIC ({})",
                      text, known));
    return selection;
  }
  if (text.rfind("last:", 0) == 0) {
    const std::string count = text.substr(5);
    char* end = nullptr;
    const long long k = std::strtoll(count.c_str(), &end, 10);
    if (count.empty() || end != count.c_str() + count.size() || k < 1 || k > 1000000)
      throw std::invalid_argument(
          fmt::format("--select '{}': last: takes a count of epochs >= 1 ({})", text, known));
    selection.kind = Selection::Kind::kLast;
    selection.last = k;
    return selection;
  }
  throw std::invalid_argument(fmt::format("unknown --select '{}' ({})", text, known));
}

SelectedValues selectOwn(const TrialScore& score, const Selection& selection) {
  SelectedValues chosen;
  const std::ptrdiff_t lastIndex = static_cast<std::ptrdiff_t>(score.epochs.size()) - 1;
  switch (selection.kind) {
    case Selection::Kind::kFinal:
      chosen.values = score.finalValues;
      chosen.epochs = epochAt(score, lastIndex);
      return chosen;
    case Selection::Kind::kLast: {
      std::size_t first = std::numeric_limits<std::size_t>::max(), count = 0;
      for (const auto& [column, test] : score.testCurves) {
        const std::size_t k =
            std::min<std::size_t>(static_cast<std::size_t>(selection.last), test.size());
        chosen.values[column] =
            meanStd(std::vector<double>(test.end() - static_cast<std::ptrdiff_t>(k), test.end()))
                .mean;
        first = std::min(first, test.size() - k);
        count = std::max(count, k);
      }
      if (count > 0)
        chosen.epochs = epochAt(score, static_cast<std::ptrdiff_t>(first)) + "-" +
                        epochAt(score, static_cast<std::ptrdiff_t>(first + count - 1));
      return chosen;
    }
    case Selection::Kind::kBestMetric: {
      const auto validation = score.validationCurves.find(selection.metric);
      const auto direction = score.higherIsBetter.find(selection.metric);
      const std::ptrdiff_t index =
          validation == score.validationCurves.end() || direction == score.higherIsBetter.end()
              ? -1
              : bestIndex(validation->second, direction->second);
      chosen.values = valuesAtIndex(score, index);
      chosen.epochs = epochAt(score, index);
      return chosen;
    }
    case Selection::Kind::kBest:
    case Selection::Kind::kBestDeltaM:
      break;
  }
  chosen.values = score.bestValues;
  for (const auto& [column, epoch] : score.bestEpochs)
    chosen.epochs += fmt::format("{}{}@{}", chosen.epochs.empty() ? "" : " ", column,
                                 epoch >= 0 ? std::to_string(epoch) : std::string("-"));
  return chosen;
}

TrialScore scoreTrial(const TrialReader& reader, const TrialEntry& entry,
                      const std::string& split) {
  TrialScore score;
  score.path = entry.path;
  score.label = entry.label;
  score.context = entry.context;
  score.seed = entry.seed;
  score.fold = entry.fold;
  const std::vector<double> epochs = reader.curve("epochs/epoch");
  for (double epoch : epochs) score.epochs.push_back(static_cast<int64_t>(epoch));
  const std::map<std::string, bool> recorded = recordedDirections(reader);
  const std::string prefix = "epochs/" + split + "/";
  for (const std::string& curve : reader.curves()) {
    if (curve.rfind(prefix, 0) != 0) continue;
    const std::string column = curve.substr(prefix.size());
    if (column.find('/') == std::string::npos) continue;
    const std::vector<double> test = reader.curve(curve);
    if (test.empty()) continue;
    score.testCurves[column] = test;
    const auto direction = recorded.find(column);
    const bool higher =
        direction != recorded.end() ? direction->second : higherIsBetter(metricOf(column));
    score.higherIsBetter[column] = higher;
    score.finalValues[column] = test.back();
    const std::string validation = "epochs/val/" + column;
    double best = kNaN;
    int64_t bestEpoch = -1;
    if (reader.hasCurve(validation)) {
      score.validationCurves[column] = reader.curve(validation);
      const std::ptrdiff_t index = bestIndex(score.validationCurves[column], higher);
      if (index >= 0 && static_cast<std::size_t>(index) < test.size()) {
        best = test[static_cast<std::size_t>(index)];
        bestEpoch = static_cast<std::size_t>(index) < epochs.size()
                        ? static_cast<int64_t>(epochs[static_cast<std::size_t>(index)])
                        : index;
      }
    }
    score.bestValues[column] = best;
    score.bestEpochs[column] = bestEpoch;
  }
  if (entry.strategy == "stl") {
    const auto task = entry.config.find("strategy.task");
    const std::string tasks = reader.text("tasks", "");
    score.singleTask = task != entry.config.end() ? task->second : tasks.substr(0, tasks.find(','));
  }
  score.msPerStep = reader.hasCurve("steps/time/total_ms")
                        ? meanStd(reader.curve("steps/time/total_ms")).mean
                        : kNaN;
  double seconds = 0.0;
  if (reader.hasCurve("epochs/seconds")) {
    for (double value : reader.curve("epochs/seconds")) seconds += value;
  }
  score.secondsPerTrial = seconds;
  return score;
}

namespace {

/// `score`'s validation values at epoch index `e`, per column (NaN where it
/// has none).
std::vector<double> validationAt(const TrialScore& score, const std::vector<std::string>& columns,
                                 std::size_t e) {
  std::vector<double> values;
  for (const std::string& column : columns) {
    const auto curve = score.validationCurves.find(column);
    values.push_back(curve != score.validationCurves.end() && e < curve->second.size()
                         ? curve->second[e]
                         : kNaN);
  }
  return values;
}

/// Per column c, the mean over `rows` (each one value per column) of row[c],
/// NaN entries left out.
std::vector<double> columnMeans(const std::vector<std::vector<double>>& rows, std::size_t columns) {
  std::vector<double> means;
  for (std::size_t c = 0; c < columns; ++c) {
    std::vector<double> column;
    for (const auto& row : rows) column.push_back(row[c]);
    means.push_back(meanStd(column).mean);
  }
  return means;
}

/// best:delta_m for one trial: the epoch whose validation Δm% against
/// `reference(e)` (the reference's validation values at epoch index e, per
/// column) is the lowest; ties go to the earliest.
SelectedValues selectByDeltaM(
    const TrialScore& score, const std::vector<std::string>& columns,
    const std::function<std::vector<double>(std::size_t)>& reference,
    const std::function<double(const std::vector<double>&, const std::vector<double>&)>& delta) {
  std::vector<double> deltas;
  for (std::size_t e = 0; e < score.epochs.size(); ++e)
    deltas.push_back(delta(validationAt(score, columns, e), reference(e)));
  const std::ptrdiff_t index = bestIndex(deltas, /*higherIsBetter=*/false);
  SelectedValues chosen;
  chosen.values = valuesAtIndex(score, index);
  chosen.epochs = epochAt(score, index);
  return chosen;
}

}  // namespace

namespace {

/// `scores` with each context's single-task trials (strategy stl) replaced
/// by one "stl" trial per seed that every such task has: task t's columns
/// from t's own trial of that seed. What happened goes to `notes`.
std::vector<TrialScore> withSingleTaskBaseline(const std::vector<TrialScore>& scores,
                                               std::vector<std::string>& notes) {
  std::vector<TrialScore> out;
  // context → task → seed → trial
  std::map<Context, std::map<std::string, std::map<Replicate, const TrialScore*>>> single;
  for (const TrialScore& score : scores) {
    if (score.singleTask.empty())
      out.push_back(score);
    else
      single[score.context][score.singleTask][replicateOf(score)] = &score;
  }
  std::set<std::string> allTasks;
  for (const TrialScore& score : scores)
    for (const auto& entry : score.finalValues) allTasks.insert(taskOf(entry.first));
  for (const auto& [context, byTask] : single) {
    const std::string where = context.empty() ? "" : " where " + contextText(context);
    std::set<Replicate> seeds;
    for (const auto& [seed, trial] : byTask.begin()->second) seeds.insert(seed);
    for (const auto& [task, bySeed] : byTask) {
      std::set<Replicate> common;
      for (const Replicate& seed : seeds)
        if (bySeed.count(seed) != 0) common.insert(seed);
      seeds = common;
    }
    std::vector<std::string> tasks, missing;
    for (const auto& entry : byTask) tasks.push_back(entry.first);
    for (const std::string& task : allTasks)
      if (byTask.count(task) == 0) missing.push_back(task);
    notes.push_back(fmt::format(
        "baseline stl{}: the single-task trials of {} combined, each task's metrics from its own "
        "trial of the same seed (seeds {}){}",
        where, fmt::join(tasks, ", "),
        seeds.empty() ? "none in common" : [&] {
          std::string list;
          for (const Replicate& seed : seeds)
            list += (list.empty() ? "" : " ") + replicateText(seed);
          return list;
        }(),
        missing.empty() ? ""
                        : fmt::format("; no single-task trial of {}: Δm% not computed",
                                      fmt::join(missing, ", "))));
    for (const Replicate& seed : seeds) {
      TrialScore combined;
      combined.label = "stl";
      combined.context = context;
      combined.seed = seed.first;
      combined.fold = seed.second;
      combined.msPerStep = 0.0;
      std::vector<std::string> paths;
      for (const auto& [task, bySeed] : byTask) {
        const TrialScore& trial = *bySeed.at(seed);
        paths.push_back(trial.path);
        if (combined.epochs.empty()) combined.epochs = trial.epochs;
        // Task `task`'s columns of each per-column map.
        auto copyTask = [&task = task](const auto& from, auto& to) {
          for (const auto& [column, value] : from)
            if (taskOf(column) == task) to[column] = value;
        };
        copyTask(trial.finalValues, combined.finalValues);
        copyTask(trial.bestValues, combined.bestValues);
        copyTask(trial.bestEpochs, combined.bestEpochs);
        copyTask(trial.higherIsBetter, combined.higherIsBetter);
        copyTask(trial.testCurves, combined.testCurves);
        copyTask(trial.validationCurves, combined.validationCurves);
        combined.msPerStep += trial.msPerStep / static_cast<double>(byTask.size());
        combined.secondsPerTrial += trial.secondsPerTrial;
      }
      combined.path = fmt::format("{}", fmt::join(paths, " + "));
      out.push_back(std::move(combined));
    }
  }
  return out;
}

}  // namespace

Comparison compare(const std::vector<TrialScore>& given, const CompareOptions& options) {
  Comparison result;
  const bool singleTaskBaseline = options.baselineValues.empty() && options.baseline == "stl";
  // A single-task trial's other heads were never trained: their columns are left out.
  std::vector<TrialScore> trained = given;
  for (TrialScore& score : trained) {
    if (score.singleTask.empty()) continue;
    auto keepOwnTask = [&score](auto& byColumn) {
      for (auto it = byColumn.begin(); it != byColumn.end();)
        it = taskOf(it->first) == score.singleTask ? std::next(it) : byColumn.erase(it);
    };
    keepOwnTask(score.finalValues);
    keepOwnTask(score.bestValues);
    keepOwnTask(score.testCurves);
    keepOwnTask(score.validationCurves);
  }
  const std::vector<TrialScore> scores =
      singleTaskBaseline ? withSingleTaskBaseline(trained, result.notes) : trained;
  result.selection = options.selection;
  result.split = options.split;
  result.deltaMByTask = options.deltaMByTask;
  const Selection::Kind kind = options.selection.kind;
  std::set<std::string> available;
  for (const TrialScore& score : scores) {
    for (const auto& entry : score.finalValues) available.insert(entry.first);
  }
  result.columns = chooseColumns(available, options.metrics);
  if (kind == Selection::Kind::kBestMetric && !scores.empty() &&
      available.count(options.selection.metric) == 0) {
    throw std::invalid_argument(fmt::format(
        "--select best:{}: no trial has the metric '{}' (known: {})", options.selection.metric,
        options.selection.metric, fmt::join(available, ", ")));
  }
  if (!scores.empty()) {
    for (const auto& entry : scores.front().context) result.contextKeys.push_back(entry.first);
  }

  // Directions as the files record them (the first file with the column).
  std::vector<bool> higher;
  std::vector<std::string> tasks;
  for (const std::string& column : result.columns) {
    bool value = higherIsBetter(metricOf(column));
    for (const TrialScore& score : scores) {
      const auto found = score.higherIsBetter.find(column);
      if (found == score.higherIsBetter.end()) continue;
      value = found->second;
      break;
    }
    higher.push_back(value);
    tasks.push_back(taskOf(column));
  }
  const auto delta = [&](const std::vector<double>& values, const std::vector<double>& base) {
    return options.deltaMByTask ? deltaMByTask(values, base, higher, tasks)
                                : deltaM(values, base, higher);
  };

  // Groups in (context, label) order.
  std::map<std::pair<Context, std::string>, std::vector<const TrialScore*>, GroupLess> groups;
  for (const TrialScore& score : scores) groups[{score.context, score.label}].push_back(&score);

  // What each trial's Δm% uses, and the values shown beside the final ones.
  std::map<const TrialScore*, SelectedValues> chosen, shown;
  for (const TrialScore& score : scores) {
    chosen[&score] = selectOwn(score, options.selection);
    shown[&score] =
        kind == Selection::Kind::kFinal ? selectOwn(score, Selection{}) : chosen[&score];
  }
  if (kind == Selection::Kind::kBestDeltaM) {
    std::set<Context> noBaseline;
    for (const TrialScore& score : scores) {
      std::function<std::vector<double>(std::size_t)> reference;
      const auto baselineGroup = groups.find({score.context, options.baseline});
      if (!options.baselineValues.empty()) {
        std::vector<double> fixed;
        for (const std::string& column : result.columns)
          fixed.push_back(valueAt(options.baselineValues, column));
        reference = [fixed](std::size_t) { return fixed; };
      } else if (score.label == options.baseline) {
        // Against itself at the same epoch every epoch would be 0: its own last epoch.
        const std::vector<double> last =
            validationAt(score, result.columns, score.epochs.empty() ? 0 : score.epochs.size() - 1);
        reference = [last](std::size_t) { return last; };
      } else if (baselineGroup != groups.end()) {
        const TrialScore* sameSeed = nullptr;
        for (const TrialScore* other : baselineGroup->second)
          if (replicateOf(*other) == replicateOf(score)) sameSeed = other;
        const std::vector<const TrialScore*> members = baselineGroup->second;
        reference = [&, sameSeed, members](std::size_t e) {
          if (sameSeed != nullptr) return validationAt(*sameSeed, result.columns, e);
          std::vector<std::vector<double>> each;
          for (const TrialScore* other : members)
            each.push_back(validationAt(*other, result.columns, e));
          return columnMeans(each, result.columns.size());
        };
      } else {
        noBaseline.insert(score.context);
        chosen[&score] = SelectedValues{valuesAtIndex(score, -1), "-"};
        shown[&score] = chosen[&score];
        continue;
      }
      chosen[&score] = selectByDeltaM(score, result.columns, reference, delta);
      shown[&score] = chosen[&score];
    }
    for (const Context& context : noBaseline)
      result.notes.push_back(fmt::format("best:delta_m: no '{}' trials{}{}: no epoch chosen there",
                                         options.baseline, context.empty() ? "" : " where ",
                                         contextText(context)));
  }

  for (const auto& [key, members] : groups) {
    ComparisonRow row;
    row.context = key.first;
    row.label = key.second;
    std::vector<double> ms, seconds;
    for (const TrialScore* score : members) {
      row.paths.push_back(score->path);
      row.seeds.push_back(score->seed);
      row.chosen.push_back({score->path, score->seed, score->fold, chosen.at(score).epochs});
      ms.push_back(score->msPerStep);
      seconds.push_back(score->secondsPerTrial);
    }
    for (const std::string& column : result.columns) {
      std::vector<double> finals, selected;
      for (const TrialScore* score : members) {
        finals.push_back(valueAt(score->finalValues, column));
        selected.push_back(valueAt(shown.at(score).values, column));
      }
      row.finalStats[column] = meanStd(finals);
      row.selectedStats[column] = meanStd(selected);
    }
    // Two files of one configuration and seed (a `fulcrum run` file next to
    // the sweep's, say) would count one seed twice: say so.
    std::map<Replicate, std::vector<std::string>> bySeed;
    for (const TrialScore* score : members) bySeed[replicateOf(*score)].push_back(score->path);
    for (const auto& [replicate, paths] : bySeed) {
      if (paths.size() > 1)
        result.notes.push_back(fmt::format("'{}'{}{} has seed {} in {} files, each counted: {}",
                                           key.second, key.first.empty() ? "" : " where ",
                                           contextText(key.first), replicateText(replicate),
                                           paths.size(), fmt::join(paths, ", ")));
    }
    row.msPerStep = meanStd(ms);
    row.secondsPerTrial = meanStd(seconds);
    result.rows.push_back(std::move(row));
  }

  // What Δm% uses of each trial, per column of result.columns.
  std::map<const TrialScore*, std::vector<double>> used;
  for (const auto& [score, selected] : chosen) {
    for (const std::string& column : result.columns)
      used[score].push_back(valueAt(selected.values, column));
  }
  auto valuesOf = [&used](const TrialScore& score) -> const std::vector<double>& {
    return used.at(&score);
  };
  auto membersOf = [&](const ComparisonRow& row) { return groups.at({row.context, row.label}); };
  auto baselineMeans = [&](const ComparisonRow& row) {
    std::vector<std::vector<double>> each;
    for (const TrialScore* score : membersOf(row)) each.push_back(valuesOf(*score));
    return columnMeans(each, result.columns.size());
  };
  // A row's trials by replicate (seed, fold).
  auto byReplicate = [&](const ComparisonRow& row) {
    std::map<Replicate, const TrialScore*> trials;
    for (const TrialScore* score : membersOf(row)) trials[replicateOf(*score)] = score;
    return trials;
  };
  auto deltaOf = [&](ComparisonRow& row, const std::vector<double>& base,
                     const ComparisonRow* baselineRow) {
    // Pair seed s with the baseline's seed s where the baseline has every
    // seed of the row (same data order and initialisation per seed).
    const std::map<Replicate, const TrialScore*> baselineSeeds =
        baselineRow != nullptr ? byReplicate(*baselineRow)
                               : std::map<Replicate, const TrialScore*>{};
    const std::vector<const TrialScore*> members = membersOf(row);
    bool paired = baselineRow != nullptr && !members.empty();
    for (const TrialScore* score : members)
      paired = paired && baselineSeeds.count(replicateOf(*score)) > 0;
    std::vector<double> perSeed;
    for (const TrialScore* score : members) {
      perSeed.push_back(delta(valuesOf(*score),
                              paired ? valuesOf(*baselineSeeds.at(replicateOf(*score))) : base));
      row.deltaBySeed[replicateOf(*score)] = perSeed.back();
    }
    row.deltaM = meanStd(perSeed);
    row.pairing = row.deltaM.n == 0 ? "" : (paired ? "seed" : "mean");
  };

  if (!options.baselineValues.empty()) {
    result.baseline =
        options.baselineDescription.empty() ? "given baseline values" : options.baselineDescription;
    std::vector<double> base;
    for (const std::string& column : result.columns)
      base.push_back(valueAt(options.baselineValues, column));
    for (ComparisonRow& row : result.rows) deltaOf(row, base, nullptr);
  } else {
    result.baseline = fmt::format(
        "{} with the same other swept keys: per seed where it has the configuration's seeds "
        "(pairing: seed), else its mean over seeds (pairing: mean)",
        singleTaskBaseline ? "the single-task trials (strategy stl), each task's metrics from "
                             "its own trial, as the row 'stl',"
                           : fmt::format("configuration '{}'", options.baseline));
    std::set<std::string> labels;
    for (const ComparisonRow& row : result.rows) labels.insert(row.label);
    if (labels.count(options.baseline) == 0) {
      if (options.baseline != "fixed" && !result.rows.empty()) {
        throw std::invalid_argument(
            fmt::format("--baseline '{}' names no configuration (known: {})", options.baseline,
                        fmt::join(labels, ", ")));
      }
      if (!result.rows.empty())
        result.notes.push_back(fmt::format(
            "no configuration '{}': Δm% and ranks not computed (choose one with --baseline: {})",
            options.baseline, fmt::join(labels, ", ")));
    }
    for (const ComparisonRow& candidate : result.rows) {
      if (candidate.label != options.baseline) continue;
      const std::vector<double> base = baselineMeans(candidate);
      for (ComparisonRow& row : result.rows) {
        if (row.context == candidate.context) deltaOf(row, base, &candidate);
      }
    }
    std::set<std::vector<std::pair<std::string, std::string>>> contexts, withBaseline;
    for (ComparisonRow& row : result.rows) {
      contexts.insert(row.context);
      if (row.label == options.baseline) {
        row.baseline = true;
        withBaseline.insert(row.context);
      }
    }
    if (labels.count(options.baseline) != 0) {
      for (const auto& context : contexts) {
        if (withBaseline.count(context) == 0)
          result.notes.push_back(fmt::format("no '{}' trials where {}: Δm% not computed there",
                                             options.baseline, contextText(context)));
      }
    }
  }

  // Significance against the baseline, per column, Holm over each context.
  std::map<Context, std::vector<ComparisonRow*>> byContext;
  for (ComparisonRow& row : result.rows) byContext[row.context].push_back(&row);
  if (options.baselineValues.empty()) {
    for (auto& entry : byContext) {
      const ComparisonRow* baselineRow = nullptr;
      for (const ComparisonRow* row : entry.second)
        if (row->baseline) baselineRow = row;
      if (baselineRow == nullptr) continue;
      const std::map<Replicate, const TrialScore*> baselineSeeds = byReplicate(*baselineRow);
      std::vector<std::pair<ComparisonRow*, std::string>> tests;
      std::vector<double> p;
      for (ComparisonRow* row : entry.second) {
        if (row->baseline) continue;
        for (std::size_t c = 0; c < result.columns.size(); ++c) {
          std::vector<double> own, base;
          if (row->pairing == "seed") {
            for (const TrialScore* score : membersOf(*row)) {
              own.push_back(valuesOf(*score)[c]);
              base.push_back(valuesOf(*baselineSeeds.at(replicateOf(*score)))[c]);
            }
          }
          Significance& test = row->significance[result.columns[c]];
          test.p = pairedTTestP(own, base);
          const double difference = meanStd(own).mean - meanStd(base).mean;
          test.sign = difference == 0.0 ? 0 : ((difference > 0.0) == higher[c] ? 1 : -1);
          tests.emplace_back(row, result.columns[c]);
          p.push_back(test.p);
        }
      }
      const std::vector<double> adjusted = holmAdjusted(p);
      for (std::size_t k = 0; k < tests.size(); ++k) {
        Significance& test = tests[k].first->significance[tests[k].second];
        test.adjusted = adjusted[k];
        if (!(adjusted[k] < kSignificanceLevel)) test.sign = 0;
        if (std::isnan(adjusted[k])) continue;
        int& count = test.sign > 0   ? tests[k].first->wins
                     : test.sign < 0 ? tests[k].first->losses
                                     : tests[k].first->ties;
        ++count;
      }
    }
  }

  // Ranks within each context.
  for (auto& entry : byContext) {
    std::vector<double> deltas;
    for (const ComparisonRow* row : entry.second)
      deltas.push_back(row->deltaM.n > 0 ? row->deltaM.mean : kNaN);
    const std::vector<int> order = ranks(deltas);
    for (std::size_t i = 0; i < order.size(); ++i) entry.second[i]->rank = order[i];
    // Ties: in order of mean Δm%, a row whose per-seed Δm% does not differ
    // significantly from the previous row's takes that row's rank.
    std::vector<ComparisonRow*> ranked;
    for (ComparisonRow* row : entry.second) {
      if (row->rank > 0) ranked.push_back(row);
    }
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const ComparisonRow* a, const ComparisonRow* b) {
                       return a->deltaM.mean < b->deltaM.mean;
                     });
    std::vector<double> p;
    for (std::size_t i = 1; i < ranked.size(); ++i) {
      std::vector<double> before, current;
      for (const auto& [seed, value] : ranked[i]->deltaBySeed) {
        const auto other = ranked[i - 1]->deltaBySeed.find(seed);
        if (other == ranked[i - 1]->deltaBySeed.end()) continue;
        current.push_back(value);
        before.push_back(other->second);
      }
      p.push_back(pairedTTestP(current, before));
    }
    const std::vector<double> adjusted = holmAdjusted(p);
    for (std::size_t i = 1; i < ranked.size(); ++i) {
      if (std::isnan(adjusted[i - 1]) || adjusted[i - 1] < kSignificanceLevel) continue;
      ranked[i]->rank = ranked[i - 1]->rank;
      ranked[i]->rankTied = ranked[i - 1]->rankTied = true;
    }
  }
  return result;
}

Comparison compareTrialSet(const TrialSet& set, const std::string& source,
                           const CompareOptions& options) {
  std::vector<TrialScore> scores;
  std::vector<ExcludedTrial> excluded;
  for (const UnreadableFile& file : set.unreadable)
    excluded.push_back({file.path, "unreadable: " + withoutPath(file.reason, file.path)});
  for (const TrialEntry& entry : set.trials) {
    if (isDuplicate(set, entry.path)) continue;
    if (entry.status != "completed") {
      excluded.push_back(
          {entry.path, entry.error.empty() ? entry.status : entry.status + ": " + entry.error});
      continue;
    }
    try {
      const TrialReader reader(entry.path);
      scores.push_back(scoreTrial(reader, entry, options.split));
    } catch (const FileError& e) {
      excluded.push_back({entry.path, "unreadable: " + withoutPath(e.what(), entry.path)});
    }
  }
  Comparison result = compare(scores, options);
  if (result.contextKeys.empty()) result.contextKeys = set.contextKeys;
  result.source = source;
  result.trialsRead = set.trials.size() + set.unreadable.size();
  result.excluded = std::move(excluded);
  result.duplicates = set.duplicates;
  for (const DuplicateTrial& duplicate : set.duplicates)
    result.notes.push_back(fmt::format(
        "{} repeats the configuration and seed of {}: counted once, {} kept (the newest by "
        "end_time; equal times: the first path), {} left out",
        duplicate.path, duplicate.kept, duplicate.kept, duplicate.path));
  return result;
}

ComparisonFormat parseComparisonFormat(const std::string& name) {
  if (name == "table") return ComparisonFormat::kTable;
  if (name == "markdown") return ComparisonFormat::kMarkdown;
  if (name == "csv") return ComparisonFormat::kCsv;
  if (name == "json") return ComparisonFormat::kJson;
  if (name == "html") return ComparisonFormat::kHtml;
  throw std::invalid_argument(
      fmt::format("unknown format '{}' (known: table, markdown, csv, json, html)", name));
}

// ---------------------------------------------------------------------------
// Rendering

namespace {

/// printf-style format for a value of `reference`'s magnitude: 4 decimals,
/// or 4 significant digits in exponent form for very large or small values.
const char* numberFormat(double reference) {
  const double magnitude = std::fabs(reference);
  return magnitude != 0.0 && (magnitude >= 1e5 || magnitude < 1e-3) ? "{:.3e}" : "{:.4f}";
}

std::string number(double value, const char* format) {
  return std::isfinite(value) ? fmt::format(fmt::runtime(format), value) : std::string("-");
}

/// "0.8123 ± 0.0051" (the std written like the mean), with "[n=2]" when fewer
/// values than the row's trials.
std::string cell(const MeanStd& stats, std::size_t trials) {
  if (stats.n == 0) return "-";
  const char* format = numberFormat(stats.mean);
  std::string text = fmt::format("{} ± {}", number(stats.mean, format), number(stats.std, format));
  if (stats.n != trials) text += fmt::format(" [n={}]", stats.n);
  return text;
}

std::string deltaCell(const MeanStd& stats) {
  if (stats.n == 0) return "-";
  // No "-0.00" for the baseline, whose mean is zero up to rounding.
  const double mean = std::fabs(stats.mean) < 0.005 ? 0.0 : stats.mean;
  return fmt::format("{:+.2f} ± {:.2f}", mean, stats.std);
}

std::string plain(const MeanStd& stats, const char* format) {
  return stats.n == 0 ? std::string("-") : fmt::format(fmt::runtime(format), stats.mean);
}

/// What the second set of values is, as the preamble states it.
std::string selectionText(const Comparison& c) {
  const Selection& s = c.selection;
  switch (s.kind) {
    case Selection::Kind::kLast:
      return fmt::format(
          "last = the mean of the last {} epochs' values (Nash-MTL's and FAMO's protocol; a "
          "trial with fewer epochs: all of them); Δm% uses last",
          s.last);
    case Selection::Kind::kBestDeltaM:
      return "best = at one epoch per trial, the one with the lowest validation Δm% over the "
             "metrics shown (LibMTL's protocol) against the baseline's validation values at the "
             "same epoch (its trial of the same seed, else its mean over seeds; the baseline's "
             "own trials against their last epoch; with --baseline-dir its values); ties: the "
             "earliest; Δm% uses best";
    case Selection::Kind::kBestMetric:
      return fmt::format(
          "best = at one epoch per trial, the one with the best validation {} (ties: the "
          "earliest); Δm% uses best",
          s.metric);
    case Selection::Kind::kFinal:
    case Selection::Kind::kBest:
      break;
  }
  return fmt::format(
      "best = at the epoch with the best validation value of the same metric (ties: the "
      "earliest); Δm% uses {}",
      s.kind == Selection::Kind::kFinal ? "final" : "best");
}

/// True where the selection chose one epoch (or a range) per trial, listed after the table.
bool listsEpochs(const Selection& selection) {
  return selection.kind == Selection::Kind::kLast ||
         selection.kind == Selection::Kind::kBestDeltaM ||
         selection.kind == Selection::Kind::kBestMetric;
}

/// The epochs each trial's values come from, one line per configuration.
std::vector<std::string> chosenEpochLines(const Comparison& c) {
  std::vector<std::string> lines;
  for (const ComparisonRow& row : c.rows) {
    std::string line = row.label;
    if (!row.context.empty()) line += " (" + contextText(row.context) + ")";
    line += ":";
    for (const ChosenEpochs& trial : row.chosen)
      line += fmt::format(" seed {} → {};", replicateText({trial.seed, trial.fold}), trial.epochs);
    line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

/// The statements every human-readable output starts with.
std::vector<std::string> preamble(const Comparison& c) {
  std::size_t compared = 0;
  for (const ComparisonRow& row : c.rows) compared += row.paths.size();
  std::vector<std::string> lines;
  lines.push_back(
      fmt::format("{}: {} trial files, {} compared in {} configurations, {} not included", c.source,
                  c.trialsRead, compared, c.rows.size(), c.excluded.size()));
  lines.push_back(
      fmt::format("configurations: trials grouped by their configuration minus {}; cells are mean "
                  "± sample std over seeds "
                  "(n seeds)",
                  fmt::join(ignoredConfigKeys(), ", ")));
  lines.push_back(fmt::format("metrics on the {} split: final = at the last epoch; {}",
                              c.split == "val" ? "validation" : c.split, selectionText(c)));
  bool folds = false;
  for (const ComparisonRow& row : c.rows)
    for (const ChosenEpochs& trial : row.chosen) folds = folds || trial.fold >= 0;
  if (folds)
    lines.push_back(
        "cross-validation: every fold is a replicate like a seed (n counts seeds × folds; "
        "pairing by seed and fold); a trial's validation split is its held-out fold");
  lines.push_back(fmt::format("{}; computed per seed on the {} values, then mean ± std over seeds",
                              c.deltaMByTask ? kDeltaMByTaskDefinition : kDeltaMDefinition,
                              c.selection.name()));
  lines.push_back(fmt::format("baseline: {}", c.baseline));
  lines.push_back(
      "significance: per metric, a paired t-test across seeds of the values Δm% uses against "
      "the baseline's trial of the same seed, Holm-corrected over the configurations × metrics "
      "of each group; ▲ significantly better, ▼ significantly worse (adjusted p < 0.05), no "
      "mark: not significant or n/a (fewer than 3 paired seeds, or a baseline of other "
      "seeds); W/T/L: per configuration, the metrics significantly better / not different / "
      "worse");
  lines.push_back(
      "rank: by mean Δm% among configurations with the same other swept keys (1 = best); ties: "
      "in that order, a configuration whose per-seed Δm% does not differ significantly from "
      "the previous one's (paired t-test over their common seeds, Holm-corrected over the "
      "group's neighbouring pairs; never tied with fewer than 3 common seeds) shares its rank, "
      "written \"2=\"");
  lines.push_back(
      "time: ms/step = mean training step (steps/time/total_ms); s/trial = training time per trial "
      "(sum of "
      "epochs/seconds, evaluation excluded)");
  for (const std::string& note : c.notes) lines.push_back("note: " + note);
  return lines;
}

/// "2", "2=" for a shared rank, "-" for none.
std::string rankText(const ComparisonRow& row) {
  if (row.rank <= 0) return "-";
  return std::to_string(row.rank) + (row.rankTied ? "=" : "");
}

std::vector<std::string> headerCells(const Comparison& c) {
  std::vector<std::string> header = {"strategy"};
  for (const std::string& key : c.contextKeys) header.push_back(key);
  header.push_back("n");
  for (const std::string& column : c.columns) {
    header.push_back(column + " final");
    header.push_back(column + " " + c.selection.shownName());
  }
  for (const char* name : {"Δm%", "pairing", "W/T/L", "rank", "ms/step", "s/trial"})
    header.push_back(name);
  return header;
}

std::vector<std::string> rowCells(const Comparison& c, const ComparisonRow& row) {
  std::vector<std::string> cells = {row.label + (row.baseline ? " (baseline)" : "")};
  for (const auto& entry : row.context) cells.push_back(entry.second);
  const std::size_t n = row.paths.size();
  cells.push_back(std::to_string(n));
  const bool onFinal = c.selection.kind == Selection::Kind::kFinal;
  for (const std::string& column : c.columns) {
    const auto test = row.significance.find(column);
    const std::string mark = test == row.significance.end() ? ""
                             : test->second.sign > 0        ? " ▲"
                             : test->second.sign < 0        ? " ▼"
                                                            : "";
    cells.push_back(cell(row.finalStats.at(column), n) + (onFinal ? mark : ""));
    cells.push_back(cell(row.selectedStats.at(column), n) + (onFinal ? "" : mark));
  }
  cells.push_back(deltaCell(row.deltaM));
  cells.push_back(row.pairing.empty() ? "-" : row.pairing);
  cells.push_back(row.wins + row.ties + row.losses == 0
                      ? "-"
                      : fmt::format("{}/{}/{}", row.wins, row.ties, row.losses));
  cells.push_back(rankText(row));
  cells.push_back(plain(row.msPerStep, "{:.2f}"));
  cells.push_back(plain(row.secondsPerTrial, "{:.1f}"));
  return cells;
}

/// Display width of UTF-8 text: code points, not bytes ("±", "Δ").
std::size_t width(const std::string& text) {
  std::size_t count = 0;
  for (unsigned char ch : text) count += (ch & 0xC0) != 0x80;
  return count;
}

std::string pad(const std::string& text, std::size_t to, bool left) {
  const std::string space(to > width(text) ? to - width(text) : 0, ' ');
  return left ? text + space : space + text;
}

std::string renderTable(const Comparison& c) {
  std::string out;
  for (const std::string& line : preamble(c)) out += line + "\n";
  out += "\n";
  std::vector<std::vector<std::string>> lines = {headerCells(c)};
  for (const ComparisonRow& row : c.rows) lines.push_back(rowCells(c, row));
  std::vector<std::size_t> widths(lines.front().size(), 0);
  for (const auto& line : lines) {
    for (std::size_t i = 0; i < line.size(); ++i) widths[i] = std::max(widths[i], width(line[i]));
  }
  const std::size_t textColumns = 1 + c.contextKeys.size();
  for (const auto& line : lines) {
    std::string text;
    for (std::size_t i = 0; i < line.size(); ++i) {
      text += (i == 0 ? "" : "  ") + pad(line[i], widths[i], i < textColumns);
    }
    text.erase(text.find_last_not_of(' ') + 1);
    out += text + "\n";
  }
  if (c.rows.empty()) out += "(no completed trials)\n";
  if (listsEpochs(c.selection) && !c.rows.empty()) {
    out += fmt::format("\nepochs chosen ({}):\n", c.selection.name());
    for (const std::string& line : chosenEpochLines(c)) out += "  " + line + "\n";
  }
  if (!c.excluded.empty()) {
    out += fmt::format("\nnot included ({}):\n", c.excluded.size());
    for (const ExcludedTrial& trial : c.excluded)
      out += fmt::format("  {}: {}\n", trial.path, trial.reason);
  }
  return out;
}

std::string markdownEscape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '|') out += "\\";
    out += ch;
  }
  return out;
}

std::string renderMarkdown(const Comparison& c) {
  std::string out;
  for (const std::string& line : preamble(c)) out += "- " + markdownEscape(line) + "\n";
  out += "\n";
  const std::vector<std::string> header = headerCells(c);
  out += "|";
  for (const std::string& name : header) out += " " + markdownEscape(name) + " |";
  out += "\n|";
  for (std::size_t i = 0; i < header.size(); ++i)
    out += i < 1 + c.contextKeys.size() ? " --- |" : " ---: |";
  out += "\n";
  for (const ComparisonRow& row : c.rows) {
    out += "|";
    for (const std::string& value : rowCells(c, row)) out += " " + markdownEscape(value) + " |";
    out += "\n";
  }
  if (listsEpochs(c.selection) && !c.rows.empty()) {
    out += fmt::format("\nEpochs chosen ({}):\n\n", markdownEscape(c.selection.name()));
    for (const std::string& line : chosenEpochLines(c)) out += "- " + markdownEscape(line) + "\n";
  }
  if (!c.excluded.empty()) {
    out += fmt::format("\nNot included ({}):\n\n", c.excluded.size());
    for (const ExcludedTrial& trial : c.excluded)
      out += fmt::format("- `{}`: {}\n", trial.path, markdownEscape(trial.reason));
  }
  return out;
}

std::string csvField(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char ch : text) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

std::string csvNumber(double value) { return std::isfinite(value) ? fmt::format("{}", value) : ""; }

std::string renderCsv(const Comparison& c) {
  std::vector<std::string> header = {"strategy"};
  for (const std::string& key : c.contextKeys) header.push_back(key);
  header.push_back("n");
  header.push_back("seeds");
  for (const std::string& column : c.columns) {
    for (const std::string& kind : {std::string("final"), c.selection.shownName()}) {
      header.push_back(fmt::format("{}_{}_mean", column, kind));
      header.push_back(fmt::format("{}_{}_std", column, kind));
    }
  }
  for (const std::string& column : c.columns) header.push_back(column + "_p_holm");
  for (const char* name :
       {"delta_m_mean", "delta_m_std", "pairing", "wins", "ties", "losses", "rank", "rank_tied",
        "baseline", "ms_per_step_mean", "ms_per_step_std", "s_per_trial_mean", "s_per_trial_std"})
    header.push_back(name);
  std::string out;
  for (std::size_t i = 0; i < header.size(); ++i) out += (i ? "," : "") + csvField(header[i]);
  out += "\n";
  for (const ComparisonRow& row : c.rows) {
    std::vector<std::string> fields = {row.label};
    for (const auto& entry : row.context) fields.push_back(entry.second);
    fields.push_back(std::to_string(row.paths.size()));
    fields.push_back(fmt::format("{}", fmt::join(row.seeds, " ")));
    for (const std::string& column : c.columns) {
      for (const auto* stats : {&row.finalStats.at(column), &row.selectedStats.at(column)}) {
        fields.push_back(csvNumber(stats->mean));
        fields.push_back(csvNumber(stats->std));
      }
    }
    for (const std::string& column : c.columns) {
      const auto test = row.significance.find(column);
      fields.push_back(csvNumber(test == row.significance.end() ? kNaN : test->second.adjusted));
    }
    fields.push_back(csvNumber(row.deltaM.n ? row.deltaM.mean : kNaN));
    fields.push_back(csvNumber(row.deltaM.n ? row.deltaM.std : kNaN));
    fields.push_back(row.pairing);
    const bool tested = row.wins + row.ties + row.losses > 0;
    for (int count : {row.wins, row.ties, row.losses})
      fields.push_back(tested ? std::to_string(count) : "");
    fields.push_back(row.rank > 0 ? std::to_string(row.rank) : "");
    fields.push_back(row.rankTied ? "true" : "false");
    fields.push_back(row.baseline ? "true" : "false");
    fields.push_back(csvNumber(row.msPerStep.mean));
    fields.push_back(csvNumber(row.msPerStep.std));
    fields.push_back(csvNumber(row.secondsPerTrial.mean));
    fields.push_back(csvNumber(row.secondsPerTrial.std));
    for (std::size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + csvField(fields[i]);
    out += "\n";
  }
  return out;
}

std::string jsonStats(const MeanStd& stats) {
  if (stats.n == 0) return "null";
  return fmt::format("{{\"mean\": {}, \"std\": {}, \"n\": {}}}", jsonNumber(stats.mean),
                     jsonNumber(stats.std), stats.n);
}

/// A swept value as JSON: a number where the whole value is one, else a string.
std::string jsonValue(const std::string& value) {
  double number = 0.0;
  return asNumber(value, number) ? jsonNumber(number) : jsonString(value);
}

std::string renderJson(const Comparison& c) {
  std::string out = "{\n";
  out += fmt::format("  \"source\": {},\n", jsonString(c.source));
  out += fmt::format("  \"trial_files\": {},\n", c.trialsRead);
  out += fmt::format("  \"selection\": {},\n", jsonString(c.selection.name()));
  out += fmt::format("  \"split\": {},\n", jsonString(c.split));
  out += fmt::format("  \"delta_m_average\": {},\n", jsonString(c.deltaMByTask ? "tasks" : "flat"));
  out += fmt::format("  \"definitions\": [{}],\n", [&] {
    std::string list;
    for (const std::string& line : preamble(c))
      list += (list.empty() ? "" : ", ") + jsonString(line);
    return list;
  }());
  out += fmt::format("  \"delta_m_definition\": {},\n",
                     jsonString(c.deltaMByTask ? kDeltaMByTaskDefinition : kDeltaMDefinition));
  out += fmt::format("  \"baseline\": {},\n", jsonString(c.baseline));
  auto list = [](const std::vector<std::string>& items) {
    std::string text;
    for (const std::string& item : items) text += (text.empty() ? "" : ", ") + jsonString(item);
    return "[" + text + "]";
  };
  out += fmt::format("  \"columns\": {},\n", list(c.columns));
  out += fmt::format("  \"context_keys\": {},\n", list(c.contextKeys));
  out += "  \"rows\": [";
  for (std::size_t r = 0; r < c.rows.size(); ++r) {
    const ComparisonRow& row = c.rows[r];
    std::string context;
    for (const auto& [key, value] : row.context)
      context +=
          fmt::format("{}{}: {}", context.empty() ? "" : ", ", jsonString(key), jsonValue(value));
    std::string finals, bests;
    for (const std::string& column : c.columns) {
      finals += fmt::format("{}{}: {}", finals.empty() ? "" : ", ", jsonString(column),
                            jsonStats(row.finalStats.at(column)));
      bests += fmt::format("{}{}: {}", bests.empty() ? "" : ", ", jsonString(column),
                           jsonStats(row.selectedStats.at(column)));
    }
    std::string tests;
    for (const auto& [column, test] : row.significance)
      tests += fmt::format("{}{}: {{\"p\": {}, \"p_holm\": {}, \"result\": {}}}",
                           tests.empty() ? "" : ", ", jsonString(column), jsonNumber(test.p),
                           jsonNumber(test.adjusted),
                           jsonString(std::isnan(test.adjusted) ? "n/a"
                                      : test.sign > 0           ? "better"
                                      : test.sign < 0           ? "worse"
                                                                : "tie"));
    std::string epochs;
    for (const ChosenEpochs& trial : row.chosen)
      epochs += fmt::format("{}{{\"file\": {}, \"seed\": {}, {}\"epochs\": {}}}",
                            epochs.empty() ? "" : ", ", jsonString(trial.path), trial.seed,
                            trial.fold >= 0 ? fmt::format("\"fold\": {}, ", trial.fold) : "",
                            jsonString(trial.epochs));
    out += fmt::format(
        "{}\n    {{\"strategy\": {}, \"context\": {{{}}}, \"n\": {}, \"seeds\": [{}], \"files\": "
        "{}, "
        "\"final\": {{{}}}, {}: {{{}}}, \"chosen_epochs\": [{}], \"delta_m\": {}, "
        "\"pairing\": {}, \"significance\": {{{}}}, \"wins\": {}, \"ties\": {}, "
        "\"losses\": {}, \"rank\": {}, "
        "\"rank_tied\": {}, \"baseline\": {}, "
        "\"ms_per_step\": {}, \"s_per_trial\": {}}}",
        r ? "," : "", jsonString(row.label), context, row.paths.size(), fmt::join(row.seeds, ", "),
        list(row.paths), finals, jsonString(c.selection.shownName()), bests, epochs,
        jsonStats(row.deltaM), row.pairing.empty() ? "null" : jsonString(row.pairing), tests,
        row.wins, row.ties, row.losses, row.rank > 0 ? std::to_string(row.rank) : "null",
        row.rankTied ? "true" : "false", row.baseline ? "true" : "false", jsonStats(row.msPerStep),
        jsonStats(row.secondsPerTrial));
  }
  out += c.rows.empty() ? "],\n" : "\n  ],\n";
  out += fmt::format("  \"notes\": {},\n", list(c.notes));
  out += "  \"duplicates\": [";
  for (std::size_t i = 0; i < c.duplicates.size(); ++i) {
    out += fmt::format("{}\n    {{\"path\": {}, \"kept\": {}}}", i ? "," : "",
                       jsonString(c.duplicates[i].path), jsonString(c.duplicates[i].kept));
  }
  out += c.duplicates.empty() ? "],\n" : "\n  ],\n";
  out += "  \"excluded\": [";
  for (std::size_t i = 0; i < c.excluded.size(); ++i) {
    out += fmt::format("{}\n    {{\"path\": {}, \"reason\": {}}}", i ? "," : "",
                       jsonString(c.excluded[i].path), jsonString(c.excluded[i].reason));
  }
  out += c.excluded.empty() ? "]\n" : "\n  ]\n";
  out += "}\n";
  return out;
}

std::string renderHtml(const Comparison& c) {
  // The page shows the selected values only (best or final: what Δm% uses)
  // and each context's rows by rank, so that the table fits its page.
  const std::vector<std::string> header = headerCells(c);
  const std::string dropped =
      c.selection.kind == Selection::Kind::kFinal ? " " + c.selection.shownName() : " final";
  std::vector<bool> keep(header.size(), true);
  const std::size_t firstMetric = 2 + c.contextKeys.size();
  for (std::size_t i = firstMetric; i < firstMetric + 2 * c.columns.size(); ++i) {
    const std::string& name = header[i];
    keep[i] = name.size() < dropped.size() ||
              name.compare(name.size() - dropped.size(), dropped.size(), dropped) != 0;
  }
  // (group, rank) per row: groups in their (sorted) order, unranked rows last.
  std::vector<std::pair<std::pair<std::size_t, int>, const ComparisonRow*>> order;
  std::size_t group = 0;
  for (std::size_t i = 0; i < c.rows.size(); ++i) {
    if (i > 0 && c.rows[i].context != c.rows[i - 1].context) ++group;
    const int rank = c.rows[i].rank > 0 ? c.rows[i].rank : std::numeric_limits<int>::max();
    order.push_back({{group, rank}, &c.rows[i]});
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<const ComparisonRow*> rows;
  for (const auto& entry : order) rows.push_back(entry.second);
  std::string out = "<ul class=\"definitions\">\n";
  for (const std::string& line : preamble(c)) out += "<li>" + htmlEscape(line) + "</li>\n";
  out += fmt::format("<li>{}</li>\n",
                     htmlEscape(fmt::format("the table shows the {} values (those Δm% uses), each "
                                            "group of rows by rank; `fulcrum compare` shows both",
                                            c.selection.name())));
  out += "</ul>\n<table id=\"comparison\">\n<thead><tr>";
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (keep[i]) out += "<th>" + htmlEscape(header[i]) + "</th>";
  }
  out += "</tr></thead>\n<tbody>\n";
  const std::size_t textColumns = 1 + c.contextKeys.size();
  for (const ComparisonRow* row : rows) {
    out += row->baseline ? "<tr class=\"baseline\">" : "<tr>";
    const std::vector<std::string> cells = rowCells(c, *row);
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (!keep[i]) continue;
      out += fmt::format("<td{}>{}</td>", i < textColumns ? "" : " class=\"number\"",
                         htmlEscape(cells[i]));
    }
    out += "</tr>\n";
  }
  out += "</tbody>\n</table>\n";
  return out;
}

}  // namespace

std::string htmlEscape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}

std::string renderComparison(const Comparison& comparison, ComparisonFormat format) {
  switch (format) {
    case ComparisonFormat::kMarkdown:
      return renderMarkdown(comparison);
    case ComparisonFormat::kCsv:
      return renderCsv(comparison);
    case ComparisonFormat::kJson:
      return renderJson(comparison);
    case ComparisonFormat::kHtml:
      return renderHtml(comparison);
    case ComparisonFormat::kTable:
      break;
  }
  return renderTable(comparison);
}

}  // namespace fulcrum::results
