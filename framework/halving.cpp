#include "framework/halving.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "framework/config_node.h"
#include "framework/experiment.h"
#include "framework/sweep.h"

namespace fulcrum {

std::vector<int64_t> halvingRungs(int64_t minEpochs, int64_t eta, int64_t epochs) {
  std::vector<int64_t> rungs;
  for (int64_t r = minEpochs; r < epochs; r *= eta) rungs.push_back(r);
  rungs.push_back(epochs);
  return rungs;
}

std::optional<HalvingSpec> readSweepHalving(const std::string& path,
                                            const std::vector<TrialSpec>& trials) {
  const YAML::Node root = YAML::Load(readExperimentFile(path));
  // (Type() of an undefined node throws: IsDefined() first.)
  if (!root.IsMap() || !root["sweep"].IsDefined() || !root["sweep"].IsMap() ||
      !root["sweep"]["halving"].IsDefined())
    return std::nullopt;
  const ConfigNode sweep(root["sweep"], path, "sweep");
  const YAML::Node yaml = root["sweep"]["halving"];
  if (!yaml.IsMap()) sweep.fail("halving", "must be a mapping: {metric: TASK/METRIC, eta: 3, ...}");
  const ConfigNode node = sweep.child("halving");
  if (trials.empty()) return std::nullopt;
  const ExperimentSpec& first = trials.front().spec;
  HalvingSpec spec;
  spec.file = path;
  spec.line = static_cast<int>(yaml.Mark().line) + 1;
  spec.column = static_cast<int>(yaml.Mark().column) + 1;
  spec.criterion = readCriterion(node, "metric", "", first.tasks);
  spec.eta = node.getInt("eta", spec.eta, 2, 1000);
  spec.asynchronous = node.getBool("asynchronous", false);
  const int64_t epochs = first.train.epochs;
  spec.minEpochs = node.getInt("min_epochs", 1, 1, 1'000'000);
  if (spec.minEpochs >= epochs)
    node.fail("min_epochs",
              fmt::format("{} is not below train.epochs ({}): there would be one rung, the full "
                          "grid",
                          spec.minEpochs, epochs));
  node.finish();
  for (const TrialSpec& trial : trials) {
    if (trial.spec.train.epochs != epochs)
      sweep.fail("halving",
                 fmt::format("trial {} trains {} epochs and trial 0 {}: halving stops every trial "
                             "at the rungs of one budget (sweep train.epochs without halving)",
                             trial.index, trial.spec.train.epochs, epochs));
    bool sameTasks = trial.spec.tasks.size() == first.tasks.size();
    for (std::size_t t = 0; sameTasks && t < first.tasks.size(); ++t)
      sameTasks = trial.spec.tasks[t].name == first.tasks[t].name &&
                  trial.spec.tasks[t].kind == first.tasks[t].kind;
    if (!sameTasks)
      sweep.fail("halving", fmt::format("trial {} has other tasks than trial 0: halving ranks "
                                        "every trial by one validation metric",
                                        trial.index));
  }
  spec.rungs = halvingRungs(spec.minEpochs, spec.eta, epochs);
  return spec;
}

std::vector<std::vector<std::size_t>> configurationGroups(const std::vector<TrialSpec>& trials) {
  std::map<std::string, std::size_t> positions;
  std::vector<std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < trials.size(); ++i) {
    std::string key;
    for (const auto& [path, value] : trials[i].values) {
      if (path == "seed" || path == "cross_validation") continue;
      key += path + "=" + value + "\n";
    }
    const auto [at, inserted] = positions.emplace(key, groups.size());
    if (inserted) groups.emplace_back();
    groups[at->second].push_back(i);
  }
  return groups;
}

std::vector<std::size_t> bestOf(const std::vector<double>& values, std::size_t count,
                                bool higherIsBetter) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const double x = values[a], y = values[b];
    if (std::isnan(x) || std::isnan(y)) return !std::isnan(x) && std::isnan(y);
    return higherIsBetter ? x > y : x < y;
  });
  order.resize(std::min(count, order.size()));
  return order;
}

std::size_t synchronousSurvivors(std::size_t members, int64_t eta) {
  return std::max<std::size_t>(1, members / static_cast<std::size_t>(eta));
}

std::optional<std::size_t> ashaPromotion(const std::vector<double>& values,
                                         const std::vector<bool>& promoted, int64_t eta,
                                         bool higherIsBetter) {
  const std::size_t top = values.size() / static_cast<std::size_t>(eta);
  for (std::size_t position : bestOf(values, top, higherIsBetter)) {
    if (!promoted[position] && !std::isnan(values[position])) return position;
  }
  return std::nullopt;
}

}  // namespace fulcrum
