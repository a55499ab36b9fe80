// Tasks: what each head predicts, its loss and its metrics.
#pragma once

#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fulcrum {

/// The kind of a task fixes its loss and its metrics (the table's rows in
/// framework/task.cpp say exactly):
/// - regression: mean squared error; metrics "mse", "mae" (lower is better);
/// - classification: cross-entropy over `outputs` classes; metric "accuracy";
/// - binary: binary cross-entropy with logits (one output); metrics "accuracy",
///   "auc" (from a histogram of 10⁴ bins of σ(logit) over the split), "log_loss",
///   "f1" (at σ > 0.5, from the split's true/false positives and false negatives);
/// dense (per pixel; outputs B × outputs × H × W, targets of the input's H × W):
/// - segmentation: cross-entropy over `outputs` classes, label −1 ignored;
///   "miou", "pixel_accuracy" from a confusion matrix over the whole split;
/// - depth: L1 over valid pixels (target ≠ 0); "abs_error", "rel_error";
/// - normals: 1 − cos between the normalised prediction and the target over
///   valid pixels (components not summing to 0); "angle_mean",
///   "angle_median" (degrees), "within_11_25", "within_22_5", "within_30"
///   (the share of pixels within 11.25°, 22.5°, 30°).
enum class TaskKind { kRegression, kClassification, kBinary, kSegmentation, kDepth, kNormals };

/// "regression", "classification", "binary", "segmentation", "depth" or "normals".
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
  /// The head's width: `fixedOutputs` when > 0 (binary 1, depth 1, normals
  /// 3); else given by `outputs:` (required for classes, default 1), at least `minOutputs`.
  int64_t fixedOutputs = 0;
  bool outputsRequired = false;
  int64_t minOutputs = 1;
  /// Per pixel: outputs B × outputs × H × W; targets B × H × W (class
  /// indices) or B × outputs × H × W. Such a task needs a spatial head.
  bool dense = false;
  /// A real-valued target (a Gaussian or Laplace likelihood, for uncertainty
  /// weighting), as opposed to classes.
  bool continuous = false;
  /// True if `targets` fit the head's `outputs` (a loss must never broadcast them).
  bool (*fits)(const torch::Tensor& outputs, const torch::Tensor& targets);
  /// The loss averaged over the rows given, every one labelled.
  torch::Tensor (*lossOf)(const torch::Tensor& outputs, const torch::Tensor& targets);
  /// Per row, true where it carries a label (see framework/data.h: kMissingClass, NaN).
  torch::Tensor (*known)(const torch::Tensor& targets);
  /// How many sums addMetrics keeps for a head of `outputs` (segmentation:
  /// its outputs² confusion matrix; normals: an angle histogram).
  std::size_t (*sumCount)(int64_t outputs);
  /// Adds the metric sums of labelled rows `outputs`, `targets` to sums[0, sumCount).
  void (*addMetrics)(const torch::Tensor& outputs, const torch::Tensor& targets, double* sums);
  /// The metrics after "loss" (metrics[1..]) from the sums over `rows`
  /// labelled rows (> 0) of a head of `outputs`; NaN where nothing was counted.
  std::vector<double> (*metricsOf)(const double* sums, int64_t rows, int64_t outputs);
};

/// Every task kind, in the order of TaskKind.
const std::vector<TaskKindInfo>& taskKindTable();
/// The row of `kind`; std::invalid_argument for a value outside the enum.
const TaskKindInfo& taskKindInfo(TaskKind kind);

/// The width of normals' angle histogram, in degrees: the median angle is
/// read from it, within this of the exact median of the split's pixels.
inline constexpr double kAngleBinDegrees = 0.01;

/// Metric names of a task, "loss" first: {"loss", "mse", "mae"} or {"loss", "accuracy"}.
std::vector<std::string> metricNames(TaskKind kind);
/// Per metric of metricNames(kind): true where a larger value is better.
std::vector<bool> metricDirections(TaskKind kind);

}  // namespace fulcrum
