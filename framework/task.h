// Tasks: what each head predicts, its loss and its metrics.
#pragma once

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
  std::string name;                         ///< unique, [A-Za-z0-9_-]+
  TaskKind kind = TaskKind::kRegression;    ///< fixes loss and metrics
  int64_t outputs = 1;                      ///< head width: classes, or regression dimension
};

/// Metric names of a task, "loss" first: {"loss", "mse", "mae"} or {"loss", "accuracy"}.
std::vector<std::string> metricNames(TaskKind kind);

/// True if a larger value of `metric` is better ("accuracy"); false for
/// losses and errors.
bool higherIsBetter(const std::string& metric);

}  // namespace fulcrum
