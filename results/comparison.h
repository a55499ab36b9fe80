// `fulcrum compare`: trials grouped by configuration minus seed, each
// group's final and best test metrics as mean ± std over seeds, Δm% against
// a baseline configuration, ranks and timings; rendered as an aligned table,
// Markdown, CSV or JSON.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "results/aggregate.h"
#include "results/sweep_folder.h"

namespace fulcrum::results {

class TrialReader;

/// Which of a trial's test values Δm% and the rank use (`--select`).
struct Selection {
  enum class Kind {
    kBest,        ///< `best`: per metric, at the epoch with its best validation value (default)
    kFinal,       ///< `final`: at the last epoch
    kLast,        ///< `last:k`: the mean of the last k epochs (Nash-MTL, FAMO)
    kBestDeltaM,  ///< `best:delta_m`: at the one epoch of the best validation Δm% (LibMTL)
    kBestMetric,  ///< `best:TASK/METRIC`: at the one epoch of that metric's best validation value
  };
  Kind kind = Kind::kBest;
  int64_t last = 0;    ///< kLast: k >= 1
  std::string metric;  ///< kBestMetric: the column "task/metric"
  /// As written: "best", "final", "last:10", "best:delta_m", "best:top_left/accuracy".
  std::string name() const;
  /// What the second set of values is called in the outputs: "last" for
  /// last:k, else "best" (with `final`, the per-metric best values are shown
  /// beside the final ones).
  std::string shownName() const;
};

/// Parses a `--select` value; std::invalid_argument naming the forms otherwise.
Selection parseSelection(const std::string& text);

/// One completed trial's numbers. Columns are named "<task>/<metric>".
struct TrialScore {
  std::string path;
  std::string label;  ///< configuration label (TrialEntry::label)
  std::vector<std::pair<std::string, std::string>> context;  ///< TrialEntry::context
  int64_t seed = 0;
  std::map<std::string, double> finalValues;  ///< test value at the last epoch
  std::map<std::string, double> bestValues;   ///< test value at the best validation epoch
  std::map<std::string, int64_t> bestEpochs;  ///< that epoch (as logged in epochs/epoch)
  /// Per column, every epoch's validation and test values (what the other
  /// selections choose from), and the epochs as logged in epochs/epoch.
  std::map<std::string, std::vector<double>> validationCurves, testCurves;
  std::vector<int64_t> epochs;
  /// Per column: true where a larger value is better, as the file records it
  /// (attribute metric_directions); for files written before it was
  /// recorded, from the metric's name (higherIsBetter).
  std::map<std::string, bool> higherIsBetter;
  /// The task a single-task trial (strategy stl) trained; "" for others.
  std::string singleTask;
  /// Its cross-validation fold (-1: none); (seed, fold) names a replicate.
  int64_t fold = -1;
  double msPerStep = 0.0;        ///< mean of steps/time/total_ms; NaN if no step
  double secondsPerTrial = 0.0;  ///< sum of epochs/seconds (training, without evaluation)
};

/// Reads the test metrics of a trial file read with all its curves:
/// every epochs/test/<task>/<metric> curve, the best epoch chosen on
/// epochs/val/<task>/<metric> (the same metric, in the direction the file
/// records). Throws FileError if the file has no epochs/epoch curve.
/// `split` ("test", or "val": under cross-validation the held-out fold)
/// names the split whose values are scored.
TrialScore scoreTrial(const TrialReader& reader, const TrialEntry& entry,
                      const std::string& split = "test");

/// A trial's values under a selection and the epochs it chose.
struct SelectedValues {
  std::map<std::string, double> values;  ///< per column
  std::string epochs;  ///< "12", "91-100" (last:k), "top_left/accuracy@12 ..." (best)
};

/// `score`'s values under `selection`, for every kind that needs no other
/// trial; best:delta_m (which needs the baseline's curves) gives the
/// per-metric best values here. A trial with fewer epochs than last:k's k
/// averages all of them; best:METRIC for a column the trial lacks gives NaN.
SelectedValues selectOwn(const TrialScore& score, const Selection& selection);

/// Options of compare().
struct CompareOptions {
  /// Label of the baseline configuration ("fixed": fixed/equal weighting).
  /// "stl": the single-task trials (strategy stl) of each context, combined
  /// into one row "stl" whose every task's metrics come from that task's own
  /// trial of the same seed (seeds every task has); they replace the stl rows.
  std::string baseline = "fixed";
  /// Instead of a configuration of the set: per column, the baseline value
  /// (e.g. single-task runs); used when non-empty, described by
  /// `baselineDescription`.
  std::map<std::string, double> baselineValues;
  std::string baselineDescription;
  /// Columns ("task/metric") or metric names ("accuracy") to show and use;
  /// empty = every metric except "loss" (loss too for a task with no other).
  std::vector<std::string> metrics;
  /// The split scored: "test", or "val" (with cross-validation, the
  /// held-out folds: the textbook way to choose fixed task weights).
  std::string split = "test";
  Selection selection;
  /// How Δm% averages: false: flat over the K metrics shown; true: over
  /// tasks of the mean over each task's metrics (LibMTL's).
  bool deltaMByTask = false;
};

/// The epochs a selection chose for one trial.
struct ChosenEpochs {
  std::string path;
  int64_t seed = 0;
  int64_t fold = -1;   ///< cross-validation fold, -1: none
  std::string epochs;  ///< "12" (one epoch), "91-100" (last:k), "per metric" (best)
};

/// One column's paired t-test against the baseline (see ComparisonRow).
struct Significance {
  double p = std::numeric_limits<double>::quiet_NaN();         ///< NaN: n/a
  double adjusted = std::numeric_limits<double>::quiet_NaN();  ///< Holm's, over the context
  /// +1 significantly better than the baseline (adjusted < 0.05), −1
  /// significantly worse, 0 not significant or n/a.
  int sign = 0;
};

/// One configuration: the trials that differ only in ignoredConfigKeys().
struct ComparisonRow {
  std::string label;
  std::vector<std::pair<std::string, std::string>> context;
  std::vector<std::string> paths;
  std::vector<int64_t> seeds;
  std::map<std::string, MeanStd> finalStats;  ///< per column, over seeds
  /// Per column, over seeds: the selected values (with `final`, the
  /// per-metric best ones, shown beside the final values).
  std::map<std::string, MeanStd> selectedStats;
  std::vector<ChosenEpochs> chosen;  ///< per trial, in the order of `paths`
  /// Δm% per seed, over seeds; n = 0 if none. Seed s is measured against
  /// the baseline's seed s where the baseline has every seed of this row
  /// (pairing "seed"), else against the baseline's mean over its seeds
  /// (pairing "mean").
  MeanStd deltaM;
  /// The Δm% of each replicate's trial, by (seed, fold) (fold -1 without
  /// cross-validation).
  std::map<std::pair<int64_t, int64_t>, double> deltaBySeed;
  std::string pairing;  ///< "seed", "mean", or "" where no Δm% was computed
  /// Per column, against the baseline of the same context: a paired t-test
  /// across seeds of the selected values (pairing "seed" and n >= 3, else
  /// n/a), Holm-adjusted over every test of the context (rows × columns).
  std::map<std::string, Significance> significance;
  /// Over the columns with a test: significantly better, not significantly
  /// different, significantly worse than the baseline.
  int wins = 0, ties = 0, losses = 0;
  int rank = 0;  ///< by mean Δm% within the same context, 1 = best; 0 = unranked
  /// True where this row shares its rank: in order of mean Δm%, a row whose
  /// per-seed Δm% does not differ significantly from the row before it
  /// (paired t-test over their common seeds, Holm-adjusted over the
  /// context's neighbouring pairs; n/a, never tied, for fewer than 3 common
  /// seeds) takes that row's rank (written "2=").
  bool rankTied = false;
  bool baseline = false;  ///< this row is the baseline of its context
  MeanStd msPerStep;
  MeanStd secondsPerTrial;
};

/// A trial left out of the averages, and why.
struct ExcludedTrial {
  std::string path;
  std::string reason;  ///< "failed: loss of task ...", "running", or why it is unreadable
};

/// The comparison of a trial set.
struct Comparison {
  std::string source;                    ///< the folder or files compared, for the header
  std::vector<std::string> columns;      ///< "task/metric", in display order
  std::vector<std::string> contextKeys;  ///< swept keys shown as columns
  std::vector<ComparisonRow> rows;       ///< grouped by context, then by label
  Selection selection;
  std::string split = "test";              ///< CompareOptions::split
  bool deltaMByTask = false;               ///< CompareOptions::deltaMByTask
  std::string baseline;                    ///< what Δm% is measured against
  std::vector<std::string> notes;          ///< e.g. a context without its baseline
  std::vector<ExcludedTrial> excluded;     ///< failed, incomplete, unreadable
  std::size_t trialsRead = 0;              ///< files found
  std::vector<DuplicateTrial> duplicates;  ///< files of a (configuration, seed) counted once
};

/// Groups `scores` and computes every statistic. Throws std::invalid_argument
/// if `options.metrics` names no column of the scores (the message lists
/// them), or if `options.baseline` was changed from "fixed" and names no
/// configuration (the message lists the labels).
Comparison compare(const std::vector<TrialScore>& scores, const CompareOptions& options);

/// Reads every completed trial of `set` with all its curves, one file at a
/// time, and compares them. Trials that are not completed (failed, running,
/// killed) and files that turn out damaged when their curves are read go to
/// Comparison::excluded with the reason, as do set.unreadable; never throws
/// for a bad file. `source` names the folder in the output.
Comparison compareTrialSet(const TrialSet& set, const std::string& source,
                           const CompareOptions& options);

/// Output formats of renderComparison.
enum class ComparisonFormat {
  kTable,     ///< aligned plain text for a terminal
  kMarkdown,  ///< the statements as a list, then a pipe table
  kCsv,       ///< one row per configuration, machine-readable
  kJson,      ///< everything, machine-readable
  kHtml,      ///< an HTML fragment: the statements as a list and <table id="comparison">
};

/// Parses "table", "markdown", "csv", "json" or "html"; throws std::invalid_argument.
ComparisonFormat parseComparisonFormat(const std::string& name);

/// Renders `comparison`. Table and Markdown state the selection rule, the
/// Δm% definition and the baseline, and list excluded trials after the
/// table; CSV is one row per configuration (columns <column>_final_mean,
/// _final_std, _best_mean, _best_std, delta_m_mean, delta_m_std, ...) with
/// excluded trials left out; JSON holds everything; HTML is a fragment
/// without the excluded trials (the report lists them in its own section).
std::string renderComparison(const Comparison& comparison, ComparisonFormat format);

/// `text` with &, <, > and " replaced by their HTML entities.
std::string htmlEscape(const std::string& text);

}  // namespace fulcrum::results
