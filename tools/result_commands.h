// `fulcrum compare`, `fulcrum export` and `fulcrum report`: read a folder of
// trial files (results/) and present it. Exit codes: 0 every file was
// included, 1 something was left out (a failed or incomplete trial, an
// unreadable file; each is listed), 2 bad input (no such folder, an unknown
// --metric, --baseline or format).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace fulcrum {

namespace results {
struct Comparison;
struct TrialSet;
}  // namespace results

/// Options shared by `compare` and `report`.
struct CompareCommandOptions {
  std::vector<std::string> targets;  ///< one folder, or trial files
  std::string baseline = "fixed";    ///< --baseline: a configuration label
  std::string baselineDir;           ///< --baseline-dir: single-task runs instead
  std::vector<std::string> metrics;  ///< --metric: columns or metric names (repeatable)
  /// --select: final, best, best:delta_m, best:TASK/METRIC or last:K (values for Δm% and rank)
  std::string select = "best";
  std::string split = "test";    ///< --split test|val: the split scored
  std::string deltaM = "flat";   ///< --delta-m flat|tasks: how Δm% averages the metrics
  std::string format = "table";  ///< --format table|markdown|csv|json
};

/// Options of `fulcrum export`.
struct ExportCommandOptions {
  std::string target;           ///< a folder of trial files
  std::string format = "csv";   ///< --format csv|jsonl
  std::string what = "epochs";  ///< --what steps|epochs|summary
  std::string out;              ///< --out: a file; default standard output
};

/// Options of `fulcrum report`.
struct ReportCommandOptions {
  CompareCommandOptions compare;            ///< target folder, baseline, metrics, select
  std::string out;                          ///< --out: the HTML file; default <folder>/report.html
  std::string plotScript;                   ///< --plot-script: default the source tree's tools/plot
  std::string python = "/usr/bin/python3";  ///< --python: runs the plot script
  bool noPlots = false;                     ///< --no-plots: skip the figures
};

/// Reads the targets into `set` and compares them as the options say.
/// Throws std::invalid_argument for bad options and results::FileError for
/// a folder that cannot be listed; never for a bad trial file.
results::Comparison buildComparison(const CompareCommandOptions& options, results::TrialSet& set);

/// Why `out` may not be written by export or report, or "" if it may: it
/// exists and is one of `set`'s files, an `.h5` file, or starts with the
/// HDF5 signature.
std::string refusedOutput(const std::string& out, const results::TrialSet& set);

int compareCommand(const CompareCommandOptions& options, std::ostream& out, std::ostream& err);
int exportCommand(const ExportCommandOptions& options, std::ostream& out, std::ostream& err);
int reportCommand(const ReportCommandOptions& options, std::ostream& out, std::ostream& err);

}  // namespace fulcrum
