// Checks and conversions shared by the built-in strategies: validating a
// step's losses, turning weights into tensors and back, and reading
// checkpoint state. Internal to strategies/; not part of the Strategy contract.
#pragma once

#include <torch/types.h>

#include <cstddef>
#include <string>
#include <vector>

#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum::detail {

/// "a, b, c": the task names in order, for messages.
std::string taskNames(const std::vector<TaskSpec>& tasks);

/// Throws std::invalid_argument unless `attached` names the same tasks, in
/// the same order, as the `expected` ones the strategy was built for.
void checkSameTasks(const std::vector<TaskSpec>& expected, const std::vector<TaskSpec>& attached,
                    const std::string& strategy);

/// The T losses of a step as one T-vector that keeps every loss's graph.
/// Throws std::invalid_argument unless there are `taskCount` losses, each
/// holding exactly one element.
torch::Tensor stackLosses(const std::vector<torch::Tensor>& losses, std::size_t taskCount,
                          const std::string& strategy);

using fulcrum::toDoubles;  // framework/strategy.h

/// `values` as a constant 1-D tensor with the device and dtype of `like`.
torch::Tensor constantLike(const std::vector<double>& values, const torch::Tensor& like);

/// `values` as the detached float32 T-vector StepOutput::weights expects, on
/// the device of `like`.
torch::Tensor reportedWeights(const std::vector<double>& values, const torch::Tensor& like);

/// Σ_i w_i L_i for the stacked losses `losses` (T) and constant weights `w`.
torch::Tensor weightedSum(const torch::Tensor& losses, const std::vector<double>& w);

/// A 1-D float64 CPU tensor holding `values`, for StrategyState.
torch::Tensor stateVector(const std::vector<double>& values);

/// A rows × cols float64 CPU tensor from equally long rows, for StrategyState.
torch::Tensor stateMatrix(const std::vector<std::vector<double>>& rows, std::size_t cols);

/// Rows of a 2-D state tensor as doubles.
std::vector<std::vector<double>> matrixRows(const torch::Tensor& matrix);

/// The entry `key` of `state`; std::invalid_argument naming the strategy and
/// the key if it is missing or not of the given number of dimensions.
const torch::Tensor& requireState(const StrategyState& state, const std::string& key, int64_t dims,
                                  const std::string& strategy);

}  // namespace fulcrum::detail
