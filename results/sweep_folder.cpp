#include "results/sweep_folder.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <system_error>
#include <tuple>

#include "results/file_screen.h"
#include "results/trial_file.h"

namespace fulcrum::results {
namespace {

namespace fs = std::filesystem;

void flatten(const YAML::Node& node, const std::string& prefix,
             std::map<std::string, std::string>& out) {
  if (node.IsMap() && node.size() > 0) {
    for (const auto& entry : node) {
      const std::string key = entry.first.as<std::string>();
      flatten(entry.second, prefix.empty() ? key : prefix + "." + key, out);
    }
    return;
  }
  if (node.IsScalar()) {
    out[prefix] = node.Scalar();
    return;
  }
  YAML::Emitter emitter;
  emitter << YAML::Flow << node;
  out[prefix] = emitter.c_str();
}

bool isStrategyKey(const std::string& key) { return key.rfind("strategy.", 0) == 0; }

/// Fills sweptKeys, contextKeys and each trial's label and context.
void describeConfigurations(TrialSet& set) {
  const std::vector<std::string>& ignored = ignoredConfigKeys();
  std::set<std::string> keys;
  for (const TrialEntry& trial : set.trials) {
    for (const auto& entry : trial.config) keys.insert(entry.first);
  }
  for (const std::string& key : keys) {
    if (std::find(ignored.begin(), ignored.end(), key) != ignored.end()) continue;
    std::set<std::string> values;
    for (const TrialEntry& trial : set.trials) {
      const auto found = trial.config.find(key);
      values.insert(found == trial.config.end() ? std::string("\x01"
                                                              "absent")
                                                : found->second);
    }
    if (values.size() > 1) set.sweptKeys.push_back(key);
  }
  for (const std::string& key : set.sweptKeys) {
    if (!isStrategyKey(key)) set.contextKeys.push_back(key);
  }
  for (TrialEntry& trial : set.trials) {
    trial.label = trial.strategy.empty() ? "?" : trial.strategy;
    trial.context.clear();
    for (const std::string& key : set.sweptKeys) {
      const auto found = trial.config.find(key);
      if (isStrategyKey(key)) {
        if (key != "strategy.name" && found != trial.config.end())
          trial.label += fmt::format(" {}={}", key.substr(9), found->second);
      } else {
        trial.context.emplace_back(key, found == trial.config.end() ? "-" : found->second);
      }
    }
    if (trial.runName.empty()) {
      trial.runName = trial.strategy.empty() ? "?" : trial.strategy;
      for (const std::string& key : set.sweptKeys) {
        const auto found = trial.config.find(key);
        if (key != "strategy.name" && found != trial.config.end())
          trial.runName += fmt::format(" {}={}", key.substr(key.rfind('.') + 1), found->second);
      }
    }
  }
}

/// Fills set.duplicates: among completed trials with equal configurations
/// (minus ignoredConfigKeys()) and seeds, all but the newest by end_time.
void findDuplicates(TrialSet& set) {
  const std::vector<std::string>& ignored = ignoredConfigKeys();
  std::map<std::tuple<std::map<std::string, std::string>, int64_t, int64_t>,
           std::vector<const TrialEntry*>>
      groups;
  for (const TrialEntry& trial : set.trials) {
    if (trial.status != "completed") continue;
    std::map<std::string, std::string> config = trial.config;
    for (const std::string& key : ignored) config.erase(key);
    if (config.empty()) config["\x01strategy"] = trial.strategy;  // a file without config_yaml
    groups[{config, trial.seed, trial.fold}].push_back(&trial);
  }
  for (const auto& entry : groups) {
    const std::vector<const TrialEntry*>& members = entry.second;
    if (members.size() < 2) continue;
    // set.trials is sorted by path: the first of the newest end times wins.
    const TrialEntry* kept = members.front();
    for (const TrialEntry* trial : members) {
      if (trial->endTime > kept->endTime) kept = trial;
    }
    for (const TrialEntry* trial : members) {
      if (trial != kept) set.duplicates.push_back({trial->path, kept->path});
    }
  }
  std::sort(set.duplicates.begin(), set.duplicates.end(),
            [](const DuplicateTrial& a, const DuplicateTrial& b) { return a.path < b.path; });
}

TrialSet readFiles(const std::vector<std::string>& paths) {
  TrialSet set;
  for (const std::string& path : paths) {
    try {
      // The reading that status and sweep use too: a file they call completed
      // is one that compare and export can read.
      const TrialReading reading = readTrialFile(path);
      if (reading.verdict == TrialVerdict::kMissing)
        throw FileError(fmt::format("{}: no such file", path));
      if (!reading.reader)
        throw FileError(reading.problem, reading.verdict == TrialVerdict::kDamaged);
      const TrialReader& reader = *reading.reader;
      TrialEntry trial;
      trial.path = path;
      trial.name = fs::path(path).stem().string();
      trial.status = reader.text("status", "unknown (no text attribute 'status')");
      trial.error = reader.text("error");
      trial.strategy = reader.text("strategy");
      trial.seed = reader.integer("seed");
      trial.endTime = reader.text("end_time");
      trial.runName = reader.text("run_name");
      const std::string yaml = reader.text("config_yaml");
      if (!yaml.empty()) {
        try {
          trial.config = flattenConfig(yaml);
          const auto fold = trial.config.find("cross_validation.fold");
          if (fold != trial.config.end()) trial.fold = std::stoll(fold->second);
        } catch (const std::exception& e) {
          throw FileError(fmt::format("{}: attribute config_yaml: {}", path, e.what()));
        }
      }
      set.trials.push_back(std::move(trial));
    } catch (const FileError& e) {
      set.unreadable.push_back({path, e.what()});
    }
  }
  std::sort(set.trials.begin(), set.trials.end(),
            [](const TrialEntry& a, const TrialEntry& b) { return a.path < b.path; });
  describeConfigurations(set);
  findDuplicates(set);
  return set;
}

}  // namespace

const std::vector<std::string>& ignoredConfigKeys() {
  static const std::vector<std::string> keys = {"seed", "output", "train.threads",
                                                "cross_validation.fold"};
  return keys;
}

std::map<std::string, std::string> flattenConfig(const std::string& yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(fmt::format("not valid YAML: {}", e.what()));
  }
  if (!root.IsMap()) throw std::runtime_error("not a YAML mapping");
  std::map<std::string, std::string> out;
  flatten(root, "", out);
  return out;
}

bool isDuplicate(const TrialSet& set, const std::string& path) {
  return std::any_of(set.duplicates.begin(), set.duplicates.end(),
                     [&](const DuplicateTrial& duplicate) { return duplicate.path == path; });
}

TrialSet scanFiles(const std::vector<std::string>& paths) { return readFiles(paths); }

TrialSet scanFolder(const std::string& folder) {
  std::error_code error;
  if (!fs::is_directory(folder, error)) throw FileError(fmt::format("{}: not a folder", folder));
  std::vector<std::string> paths;
  for (fs::directory_iterator it(folder, error), end; !error && it != end; it.increment(error)) {
    if (it->path().extension() == ".h5") paths.push_back(it->path().string());
  }
  if (error)
    throw FileError(fmt::format("{}: cannot list the folder ({})", folder, error.message()));
  std::sort(paths.begin(), paths.end());
  return readFiles(paths);
}

}  // namespace fulcrum::results
