// `fulcrum export`: a trial set's curves in long ("tidy") form, one value per
// row, for pandas or seaborn. Written one trial file at a time, so a large
// sweep never sits in memory whole.
//
// Columns, in this order (CSV header; JSONL keys):
//   trial     the file name without ".h5"
//   status    completed, failed or running
//   config    the configuration label: strategy and its swept options
//   strategy  the strategy name
//   seed      the trial's seed
//   <key>...  one column per swept configuration key (sweptKeys), "-" if absent
//   task      the task; empty for per-step timings and diagnostics and epochs/seconds
//   split     train, val or test; "train" for per-step losses and weights, empty otherwise
//             (gradients: other_task instead, the second task of a cosine)
//   step      global step from 0 (steps); empty for epochs and summary
//   epoch     epoch from 0 (steps: the step's epoch; summary: the epoch the value is from)
//   metric    loss, weight, <timing>_ms, a diagnostic's name, accuracy, mse, ...;
//             gradients: grad_norm (task), cosine (task, other_task),
//             direction_norm and step_norm (no task)
//   select    summary only: final or best (best = at the best validation epoch)
//   value     the number; empty in CSV and null in JSON when NaN
#pragma once

#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

#include "results/sweep_folder.h"

namespace fulcrum::results {

/// What to export.
enum class ExportWhat {
  kSteps,      ///< every per-step curve: losses, weights, timings, diagnostics
  kEpochs,     ///< every per-epoch curve: metrics per split and task, seconds
  kSummary,    ///< per completed trial the final and best test metrics
  kGradients,  ///< gradient diagnostics: per-task norms, pairwise cosines, update norms
};

/// How to write it.
enum class ExportFormat { kCsv, kJsonl };

/// Parse "steps", "epochs", "summary", "gradients" / "csv", "jsonl"; throw std::invalid_argument.
ExportWhat parseExportWhat(const std::string& name);
ExportFormat parseExportFormat(const std::string& name);

/// The column names written for `set` and `what`.
std::vector<std::string> exportColumns(const TrialSet& set, ExportWhat what);

/// What exportTidy wrote.
struct ExportResult {
  std::size_t trials = 0;  ///< files exported
  std::size_t rows = 0;    ///< rows written (header excluded)
  std::vector<UnreadableFile>
      unreadable;  ///< set.unreadable plus files that failed on reading curves
};

/// Writes every trial of `set` (summary: completed trials only, and none of
/// set.duplicates) to `out`.
/// Never throws for a bad file: it is listed in the result and skipped.
ExportResult exportTidy(const TrialSet& set, ExportWhat what, ExportFormat format,
                        std::ostream& out);

}  // namespace fulcrum::results
