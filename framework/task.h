// Tasks: what each head predicts, its loss and its metrics.
#pragma once

#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fulcrum {

/// The kind of a task fixes its loss and its metrics:
/// - regression: mean squared error; metrics "mse", "mae" (lower is better);
/// - classification: cross-entropy over `outputs` classes; metric "accuracy";
/// - binary: binary cross-entropy with logits (one output); metric "accuracy".
enum class TaskKind { kRegression, kClassification, kBinary };

/// "regression", "classification" or "binary".
std::string toString(TaskKind kind);

/// One task of an experiment.
struct TaskSpec {
  std::string name;                       ///< unique, [A-Za-z0-9_-]+
  TaskKind kind = TaskKind::kRegression;  ///< fixes loss and metrics
  int64_t outputs = 1;                    ///< head width: classes, or regression dimension
};

/// One metric a task kind reports after every epoch.
struct MetricInfo {
  std::string name;             ///< "loss", "mse", "accuracy", ...
  bool higherIsBetter = false;  ///< its direction, written into every trial file
};

/// One row of the table of task kinds: everything the trainer and the
/// result files need to know about a kind. A kind is one row: its loss, which
/// rows carry a label, and its metrics as additive sums over batches (so that
/// splits are scored in batches, and processes can all-reduce the sums).
struct TaskKindInfo {
  TaskKind kind;
  std::string name;                 ///< as written in YAML
  std::string loss;                 ///< one line: the loss and its missing-label rule
  std::vector<MetricInfo> metrics;  ///< "loss" first
  std::string targetShape;          ///< what targets must be, for messages: "one label per row"
  /// True if `targets` fit the head's `outputs` (a loss must never broadcast them).
  bool (*fits)(const torch::Tensor& outputs, const torch::Tensor& targets);
  /// The loss averaged over the rows given, every one labelled.
  torch::Tensor (*lossOf)(const torch::Tensor& outputs, const torch::Tensor& targets);
  /// Per row, true where it carries a label (see framework/data.h: kMissingClass, NaN).
  torch::Tensor (*known)(const torch::Tensor& targets);
  std::size_t sumCount;  ///< how many sums addMetrics keeps
  /// Adds the metric sums of labelled rows `outputs`, `targets` to sums[0, sumCount).
  void (*addMetrics)(const torch::Tensor& outputs, const torch::Tensor& targets, double* sums);
  /// The metrics after "loss" (metrics[1..]) from the sums over `rows` labelled rows (> 0).
  std::vector<double> (*metricsOf)(const double* sums, int64_t rows);
};

/// Every task kind, in the order of TaskKind.
const std::vector<TaskKindInfo>& taskKindTable();
/// The row of `kind`; std::invalid_argument for a value outside the enum.
const TaskKindInfo& taskKindInfo(TaskKind kind);

/// Metric names of a task, "loss" first: {"loss", "mse", "mae"} or {"loss", "accuracy"}.
std::vector<std::string> metricNames(TaskKind kind);
/// Per metric of metricNames(kind): true where a larger value is better.
std::vector<bool> metricDirections(TaskKind kind);

}  // namespace fulcrum
