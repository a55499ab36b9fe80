#include "framework/task.h"

#include <torch/nn/functional/loss.h>

#include <algorithm>
#include <stdexcept>

#include "framework/data.h"

namespace fulcrum {

namespace {

/// One label per row: a vector as long as the outputs' rows.
bool oneLabelPerRow(const torch::Tensor& outputs, const torch::Tensor& targets) {
  return outputs.dim() == 2 && targets.dim() == 1 && outputs.size(0) == targets.size(0);
}

/// Rows whose targets hold no NaN.
torch::Tensor finiteRows(const torch::Tensor& targets) {
  return targets.dim() > 1 ? targets.isnan().logical_not().flatten(1).all(1)
                           : targets.isnan().logical_not();
}

// Regression: sums of squared and absolute errors and of the elements.
void addErrors(const torch::Tensor& outputs, const torch::Tensor& targets, double* sums) {
  const torch::Tensor diff = outputs - targets;
  sums[0] += diff.square().sum().item<double>();
  sums[1] += diff.abs().sum().item<double>();
  sums[2] += static_cast<double>(diff.numel());
}

std::vector<double> meanErrors(const double* sums, int64_t) {
  const double elements = std::max(sums[2], 1.0);
  return {sums[0] / elements, sums[1] / elements};
}

// Classification and binary: the correct rows.
std::vector<double> accuracy(const double* sums, int64_t rows) {
  return {sums[0] / static_cast<double>(rows)};
}

}  // namespace

const std::vector<TaskKindInfo>& taskKindTable() {
  static const std::vector<TaskKindInfo> table = {
      {TaskKind::kRegression,
       "regression",
       "mean squared error over the labelled rows (NaN targets are missing)",
       {{"loss", false}, {"mse", false}, {"mae", false}},
       "the outputs' shape",
       [](const torch::Tensor& outputs, const torch::Tensor& targets) {
         return outputs.sizes() == targets.sizes();
       },
       [](const torch::Tensor& outputs, const torch::Tensor& targets) {
         return torch::nn::functional::mse_loss(outputs, targets);
       },
       finiteRows,
       3,
       addErrors,
       meanErrors},
      {TaskKind::kClassification,
       "classification",
       "cross-entropy over `outputs` classes, labelled rows only (class -1 is missing)",
       {{"loss", false}, {"accuracy", true}},
       "one label per row",
       oneLabelPerRow,
       [](const torch::Tensor& outputs, const torch::Tensor& targets) {
         return torch::nn::functional::cross_entropy(outputs, targets);
       },
       [](const torch::Tensor& targets) { return targets.ne(kMissingClass); },
       1,
       [](const torch::Tensor& outputs, const torch::Tensor& targets, double* sums) {
         sums[0] += outputs.argmax(1).eq(targets).sum().item<double>();
       },
       accuracy},
      {TaskKind::kBinary,
       "binary",
       "binary cross-entropy with logits (one output), labelled rows only (NaN is missing)",
       {{"loss", false}, {"accuracy", true}},
       "one label per row",
       [](const torch::Tensor& outputs, const torch::Tensor& targets) {
         return oneLabelPerRow(outputs, targets) && outputs.size(1) == 1;
       },
       [](const torch::Tensor& outputs, const torch::Tensor& targets) {
         return torch::nn::functional::binary_cross_entropy_with_logits(outputs.squeeze(-1),
                                                                        targets);
       },
       finiteRows,
       1,
       [](const torch::Tensor& outputs, const torch::Tensor& targets, double* sums) {
         sums[0] += outputs.squeeze(-1).gt(0).eq(targets.gt(0.5)).sum().item<double>();
       },
       accuracy},
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
