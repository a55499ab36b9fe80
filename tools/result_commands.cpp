#include "tools/result_commands.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include "results/comparison.h"
#include "results/sweep_folder.h"
#include "results/tidy_export.h"
#include "results/trial_file.h"

namespace fulcrum {

namespace fs = std::filesystem;

namespace {

results::TrialSet readTargets(const std::vector<std::string>& targets) {
  if (targets.empty()) throw std::invalid_argument("no folder or trial files given");
  std::error_code code;
  if (targets.size() == 1 && fs::is_directory(targets.front(), code))
    return results::scanFolder(targets.front());
  for (const std::string& target : targets) {
    if (fs::is_directory(target, code))
      throw std::invalid_argument(
          fmt::format("'{}' is a folder: give one folder, or trial files", target));
  }
  return results::scanFiles(targets);
}

std::string describeTargets(const std::vector<std::string>& targets) {
  if (targets.size() == 1) return targets.front();
  return fmt::format("{} files", targets.size());
}

/// The mean of each column over the completed trials of a folder of
/// single-task (or any) runs, each trial's values chosen by `selection`
/// (best:delta_m: each run's per-metric best, for want of a baseline of theirs).
std::map<std::string, double> baselineValues(const std::string& folder,
                                             const results::Selection& selection,
                                             const std::string& split, std::ostream& err) {
  const results::TrialSet set = results::scanFolder(folder);
  std::map<std::string, std::vector<double>> values;
  for (const results::TrialEntry& entry : set.trials) {
    if (entry.status != "completed") continue;
    try {
      const results::TrialReader reader(entry.path);
      const results::TrialScore score = results::scoreTrial(reader, entry, split);
      for (const auto& [column, value] : results::selectOwn(score, selection).values)
        values[column].push_back(value);
    } catch (const results::FileError& e) {
      err << "fulcrum: baseline skipped: " << e.what() << "\n";
    }
  }
  for (const results::UnreadableFile& file : set.unreadable)
    err << "fulcrum: baseline skipped: " << file.reason << "\n";
  std::map<std::string, double> means;
  for (const auto& [column, list] : values) means[column] = results::meanStd(list).mean;
  if (means.empty())
    throw std::invalid_argument(
        fmt::format("--baseline-dir '{}' holds no completed trial", folder));
  return means;
}

}  // namespace

std::string refusedOutput(const std::string& out, const results::TrialSet& set) {
  std::error_code code;
  if (!fs::exists(fs::symlink_status(out, code)) && !fs::exists(out, code)) return "";
  const auto inputs = [&] {
    std::vector<std::string> paths;
    for (const results::TrialEntry& trial : set.trials) paths.push_back(trial.path);
    for (const results::UnreadableFile& file : set.unreadable) paths.push_back(file.path);
    return paths;
  }();
  for (const std::string& input : inputs) {
    if (fs::equivalent(out, input, code))
      return fmt::format("--out '{}' is an input of this command ({}): refusing to write onto it",
                         out, input);
  }
  if (fs::path(out).extension() == ".h5")
    return fmt::format("--out '{}' is an existing .h5 file: refusing to write onto it", out);
  std::ifstream in(out, std::ios::binary);
  char signature[8] = {};
  if (in && in.read(signature, sizeof(signature)) &&
      std::string(signature, sizeof(signature)) == "\x89HDF\r\n\x1a\n")
    return fmt::format("--out '{}' is an existing HDF5 file: refusing to write onto it", out);
  return "";
}

results::Comparison buildComparison(const CompareCommandOptions& options, results::TrialSet& set) {
  results::CompareOptions compare;
  compare.baseline = options.baseline;
  compare.metrics = options.metrics;
  compare.selection = results::parseSelection(options.select);
  if (options.deltaM != "flat" && options.deltaM != "tasks")
    throw std::invalid_argument(
        fmt::format("unknown --delta-m '{}' (known: flat, tasks)", options.deltaM));
  compare.deltaMByTask = options.deltaM == "tasks";
  if (options.split != "test" && options.split != "val")
    throw std::invalid_argument(
        fmt::format("unknown --split '{}' (known: test, val)", options.split));
  compare.split = options.split;
  if (!options.baselineDir.empty()) {
    compare.baselineValues =
        baselineValues(options.baselineDir, compare.selection, options.split, std::cerr);
    compare.baselineDescription =
        fmt::format("runs in {} (per task and metric, the mean over its completed trials)",
                    options.baselineDir);
  }
  set = readTargets(options.targets);
  return results::compareTrialSet(set, describeTargets(options.targets), compare);
}

int compareCommand(const CompareCommandOptions& options, std::ostream& out, std::ostream& err) {
  results::TrialSet set;
  results::Comparison comparison;
  results::ComparisonFormat format;
  try {
    format = results::parseComparisonFormat(options.format);
    comparison = buildComparison(options, set);
  } catch (const std::invalid_argument& e) {
    err << "fulcrum: compare: " << e.what() << "\n";
    return 2;
  } catch (const results::FileError& e) {
    err << "fulcrum: compare: " << e.what() << "\n";
    return 2;
  }
  out << results::renderComparison(comparison, format);
  out.flush();
  // Machine-readable formats keep stdout clean; the exclusions also go to
  // stderr so that a script notices them.
  if (format == results::ComparisonFormat::kCsv) {
    for (const auto& trial : comparison.excluded)
      err << "fulcrum: not included: " << trial.path << ": " << trial.reason << "\n";
  }
  return comparison.excluded.empty() ? 0 : 1;
}

int exportCommand(const ExportCommandOptions& options, std::ostream& out, std::ostream& err) {
  results::ExportWhat what;
  results::ExportFormat format;
  results::TrialSet set;
  try {
    what = results::parseExportWhat(options.what);
    format = results::parseExportFormat(options.format);
    set = results::scanFolder(options.target);
  } catch (const std::invalid_argument& e) {
    err << "fulcrum: export: " << e.what() << "\n";
    return 2;
  } catch (const results::FileError& e) {
    err << "fulcrum: export: " << e.what() << "\n";
    return 2;
  }
  if (!options.out.empty()) {
    const std::string refused = refusedOutput(options.out, set);
    if (!refused.empty()) {
      err << "fulcrum: export: " << refused << "\n";
      return 2;
    }
  }
  std::ofstream file;
  std::ostream* sink = &out;
  if (!options.out.empty()) {
    file.open(options.out, std::ios::binary | std::ios::trunc);
    if (!file) {
      err << "fulcrum: export: cannot write '" << options.out << "'\n";
      return 2;
    }
    sink = &file;
  }
  const results::ExportResult result = results::exportTidy(set, what, format, *sink);
  if (!*sink) {
    err << "fulcrum: export: writing failed\n";
    return 2;
  }
  for (const results::UnreadableFile& bad : result.unreadable)
    err << "fulcrum: export: skipped " << bad.reason << "\n";
  if (what == results::ExportWhat::kSummary) {
    for (const results::DuplicateTrial& duplicate : set.duplicates)
      err << fmt::format(
          "fulcrum: export: {} repeats the configuration and seed of {}: counted once, {} kept "
          "(the newest by end_time), {} left out\n",
          duplicate.path, duplicate.kept, duplicate.kept, duplicate.path);
  }
  err << fmt::format(
      "fulcrum export: {} rows from {} trial files{}\n", result.rows, result.trials,
      result.unreadable.empty() ? "" : fmt::format(", {} skipped", result.unreadable.size()));
  return result.unreadable.empty() ? 0 : 1;
}

}  // namespace fulcrum
