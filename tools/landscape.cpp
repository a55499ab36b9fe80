#include "tools/landscape.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "framework/config_node.h"
#include "framework/experiment.h"
#include "framework/landscape.h"
#include "framework/trainer.h"
#include "results/trial_file.h"
#include "strategies/registry.h"
#include "tools/commands.h"
#include "tools/interrupt.h"

namespace fulcrum {

namespace fs = std::filesystem;

namespace {

/// One entry of `strategies:` and the label its runs are stored under.
struct StrategyEntry {
  ConfigNode node;
  std::string label;  ///< the name, or name-2, name-3 for repeated names
};

/// A landscape experiment file, validated.
struct LandscapeExperiment {
  std::string name;
  std::string output;
  LandscapeSpec spec;
  std::vector<StrategyEntry> strategies;
  std::string yaml;
};

LandscapeExperiment readLandscapeExperiment(const LandscapeOptions& options) {
  const std::string& file = options.experiment;
  const std::string text = readExperimentFile(file);
  const YAML::Node root = parseYaml(text, file);
  if (!root.IsMap()) {
    throw ConfigError(file, 0, 0, "", "a landscape experiment must be a mapping of keys (name, landscape, strategies, output)");
  }
  const ConfigNode top(root, file, "");
  LandscapeExperiment experiment;
  experiment.name = top.getString("name", fs::path(file).stem().string());
  experiment.output = top.getString("output", "out/" + experiment.name);
  experiment.spec = readLandscapeSpec(top.child("landscape"));
  if (options.steps > 0) experiment.spec.steps = options.steps;
  if (!top.has("strategies")) top.fail("", "'strategies' is missing: list the strategies to run, e.g. [{name: fixed}, {name: mgda}]");
  const std::vector<ConfigNode> entries = top.children("strategies");
  if (entries.empty()) top.fail("strategies", "the list is empty");
  top.finish();

  const std::vector<TaskSpec> tasks = landscapeTasks();
  std::map<std::string, int> seen;
  for (const ConfigNode& entry : entries) {
    makeStrategy(entry, tasks);  // validates the name and every option now
    const std::string name = entry.getString("name", "");
    const int count = ++seen[name];
    experiment.strategies.push_back({entry, count == 1 ? name : fmt::format("{}-{}", name, count)});
  }
  if (!options.strategies.empty()) {
    std::vector<StrategyEntry> chosen;
    for (const std::string& wanted : options.strategies) {
      const auto match = std::find_if(experiment.strategies.begin(), experiment.strategies.end(),
                                      [&](const StrategyEntry& e) { return e.label == wanted; });
      if (match == experiment.strategies.end()) {
        throw ConfigError(file, 0, 0, "strategies",
                          fmt::format("--strategy {}: not in the file's list", wanted));
      }
      chosen.push_back(*match);
    }
    experiment.strategies = chosen;
  }
  experiment.yaml = text;
  return experiment;
}

std::string runKey(const std::string& label, std::size_t start) {
  return fmt::format("runs/{}/start{}", label, start + 1);
}

const std::vector<std::string> kRunCurves = {"step", "x1", "x2", "L1", "L2", "weight_L1", "weight_L2"};

}  // namespace

int landscapeCommand(const LandscapeOptions& options) {
  LandscapeExperiment experiment;
  try {
    experiment = readLandscapeExperiment(options);
  } catch (const ConfigError& e) {
    return reportError(e.what());
  }
  const LandscapeSpec& spec = experiment.spec;
  const fs::path path = options.out.empty() ? fs::path(experiment.output) / (experiment.name + ".h5")
                                            : fs::path(options.out);
  std::vector<std::string> curves;
  results::Attributes attributes;
  attributes.text["kind"] = "landscape";
  attributes.text["name"] = experiment.name;
  attributes.text["config_yaml"] = experiment.yaml;
  std::string labels;
  for (const StrategyEntry& entry : experiment.strategies) {
    labels += (labels.empty() ? "" : ",") + entry.label;
    for (std::size_t s = 0; s < spec.starts.size(); ++s) {
      for (const std::string& curve : kRunCurves) curves.push_back(runKey(entry.label, s) + "/" + curve);
    }
  }
  attributes.text["strategies"] = labels;
  std::vector<std::string> starts;
  for (const Point2& start : spec.starts) starts.push_back(fmt::format("{} {}", start[0], start[1]));
  attributes.text["starts"] = fmt::format("{}", fmt::join(starts, ";"));
  attributes.text["loss_scales"] = fmt::format("{} {}", spec.lossScales[0], spec.lossScales[1]);
  attributes.integers["steps"] = spec.steps;

  std::unique_ptr<results::TrialWriter> writer;
  try {
    prepareOutputFolder(path.parent_path().empty() ? fs::path(".") : path.parent_path());
    writer = std::make_unique<results::TrialWriter>(path.string(), attributes, curves, /*overwrite=*/true);
  } catch (const std::exception& e) {
    return reportError(e.what());
  }

  configureThreads(1);
  installStopHandlers();
  const std::size_t runCount = experiment.strategies.size() * spec.starts.size();
  const auto cores = std::max(1u, std::thread::hardware_concurrency());
  const std::size_t jobs = std::min<std::size_t>(runCount, options.jobs > 0 ? options.jobs : cores);
  std::cout << fmt::format("landscape: {} strategies x {} starts, {} steps each, {} at once -> {}\n",
                           experiment.strategies.size(), spec.starts.size(), spec.steps, jobs, path.string());

  std::mutex mutex;
  std::atomic<std::size_t> next{0};
  std::size_t done = 0;
  std::vector<std::string> failures;
  results::Attributes runAttributes;
  const auto began = std::chrono::steady_clock::now();
  const auto work = [&] {
    for (std::size_t index = next++; index < runCount && stopSignal() == 0; index = next++) {
      const StrategyEntry& entry = experiment.strategies[index / spec.starts.size()];
      const std::size_t s = index % spec.starts.size();
      LandscapeRun run;
      try {
        const std::unique_ptr<Strategy> strategy = makeStrategy(entry.node, landscapeTasks());
        run = runLandscape(*strategy, spec, spec.starts[s]);
      } catch (const std::exception& e) {
        run.status = "failed";
        run.error = e.what();
      }
      const std::lock_guard<std::mutex> lock(mutex);
      const std::string key = runKey(entry.label, s);
      for (std::size_t k = 0; k < run.steps.size(); ++k) {
        const double values[] = {static_cast<double>(run.steps[k]), run.points[k][0], run.points[k][1],
                                 run.losses[k][0], run.losses[k][1], run.weights[k][0], run.weights[k][1]};
        for (std::size_t c = 0; c < kRunCurves.size(); ++c) {
          writer->append(writer->curve(key + "/" + kRunCurves[c]), values[c]);
        }
      }
      writer->flush();
      // Attribute names: "<label>.start<k>.status" and ".error".
      const std::string prefix = fmt::format("{}.start{}", entry.label, s + 1);
      runAttributes.text[prefix + ".status"] = run.status;
      runAttributes.text[prefix + ".error"] = run.error;
      if (run.status != "completed") failures.push_back(fmt::format("{}: {}", key, run.error));
      ++done;
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
      const std::string end = run.points.empty()
                                  ? "-"
                                  : fmt::format("({:.3f}, {:.3f}) L = ({:.3f}, {:.3f})", run.points.back()[0],
                                                run.points.back()[1], run.losses.back()[0], run.losses.back()[1]);
      std::cout << fmt::format("[{}/{} {:.0f}s] {:<12} start {} ({}, {}) -> {} {}\n", done, runCount, seconds,
                               entry.label, s + 1, spec.starts[s][0], spec.starts[s][1], end,
                               run.status == "completed" ? "" : "FAILED: " + run.error)
                << std::flush;
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t j = 0; j < jobs; ++j) threads.emplace_back(work);
  for (auto& thread : threads) thread.join();

  if (stopSignal() != 0) {
    writer->finish("failed", fmt::format("interrupted after {} of {} runs", done, runCount), runAttributes);
    return reportError(fmt::format("interrupted after {} of {} runs; {} keeps them", done, runCount, path.string()), 1);
  }
  writer->finish(failures.empty() ? "completed" : "failed",
                 failures.empty() ? "" : fmt::format("{} runs failed", failures.size()), runAttributes);
  std::cout << fmt::format("wrote {}\n", path.string());
  if (!failures.empty()) {
    for (const std::string& failure : failures) std::cerr << "fulcrum: failed: " << failure << "\n";
    return 1;
  }
  return 0;
}

}  // namespace fulcrum
