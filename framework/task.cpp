#include "framework/task.h"

#include <stdexcept>

namespace fulcrum {

const std::vector<TaskKindInfo>& taskKindTable() {
  static const std::vector<TaskKindInfo> table = {
      {TaskKind::kRegression,
       "regression",
       "mean squared error over the labelled rows (NaN targets are missing)",
       {{"loss", false}, {"mse", false}, {"mae", false}}},
      {TaskKind::kClassification,
       "classification",
       "cross-entropy over `outputs` classes, labelled rows only (class -1 is missing)",
       {{"loss", false}, {"accuracy", true}}},
      {TaskKind::kBinary,
       "binary",
       "binary cross-entropy with logits (one output), labelled rows only (NaN is missing)",
       {{"loss", false}, {"accuracy", true}}},
  };
  return table;
}

const TaskKindInfo& taskKindInfo(TaskKind kind) {
  for (const auto& row : taskKindTable()) {
    if (row.kind == kind) return row;
  }
  // Only reachable through a value cast from an integer outside the enum.
  throw std::invalid_argument("TaskKind: invalid value " + std::to_string(static_cast<int>(kind)));
}

std::string toString(TaskKind kind) { return taskKindInfo(kind).name; }

std::vector<std::string> metricNames(TaskKind kind) {
  std::vector<std::string> names;
  for (const auto& metric : taskKindInfo(kind).metrics) names.push_back(metric.name);
  return names;
}

std::vector<bool> metricDirections(TaskKind kind) {
  std::vector<bool> higher;
  for (const auto& metric : taskKindInfo(kind).metrics) higher.push_back(metric.higherIsBetter);
  return higher;
}

}  // namespace fulcrum
