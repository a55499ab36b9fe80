#include "strategies/support.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <stdexcept>

namespace fulcrum::detail {

std::string taskNames(const std::vector<TaskSpec>& tasks) {
  std::string names;
  for (const auto& task : tasks) {
    if (!names.empty()) names += ", ";
    names += task.name;
  }
  return names;
}

void checkSameTasks(const std::vector<TaskSpec>& expected, const std::vector<TaskSpec>& attached,
                    const std::string& strategy) {
  bool same = expected.size() == attached.size();
  for (std::size_t i = 0; same && i < expected.size(); ++i) {
    same = expected[i].name == attached[i].name && expected[i].kind == attached[i].kind;
  }
  if (!same) {
    throw std::invalid_argument(
        fmt::format("{}: attached to a model with tasks ({}) but built for tasks ({})", strategy,
                    taskNames(attached), taskNames(expected)));
  }
}

torch::Tensor stackLosses(const std::vector<torch::Tensor>& losses, std::size_t taskCount,
                          const std::string& strategy) {
  if (losses.size() != taskCount) {
    throw std::invalid_argument(fmt::format("{}: expected {} losses (one per task), got {}",
                                            strategy, taskCount, losses.size()));
  }
  std::vector<torch::Tensor> scalars;
  scalars.reserve(losses.size());
  for (std::size_t i = 0; i < losses.size(); ++i) {
    // A loss of shape [1] would otherwise stack to T×1 and broadcast against
    // the T weights into a T×T product.
    if (!losses[i].defined() || losses[i].numel() != 1) {
      throw std::invalid_argument(fmt::format(
          "{}: loss {} must hold exactly one element, got shape {}", strategy, i,
          losses[i].defined() ? c10::str(losses[i].sizes()) : std::string("(undefined)")));
    }
    scalars.push_back(losses[i].reshape({}));
  }
  return torch::stack(scalars);
}

torch::Tensor constantLike(const std::vector<double>& values, const torch::Tensor& like) {
  return stateVector(values).to(like.device(), like.scalar_type());
}

torch::Tensor reportedWeights(const std::vector<double>& values, const torch::Tensor& like) {
  return stateVector(values).to(like.device(), torch::kFloat32);
}

torch::Tensor weightedSum(const torch::Tensor& losses, const std::vector<double>& w) {
  return (constantLike(w, losses) * losses).sum();
}

torch::Tensor stateVector(const std::vector<double>& values) {
  torch::Tensor out = torch::empty({static_cast<int64_t>(values.size())}, torch::kFloat64);
  std::copy(values.begin(), values.end(), out.data_ptr<double>());
  return out;
}

torch::Tensor stateMatrix(const std::vector<std::vector<double>>& rows, std::size_t cols) {
  torch::Tensor out = torch::empty({static_cast<int64_t>(rows.size()), static_cast<int64_t>(cols)},
                                   torch::kFloat64);
  double* data = out.data_ptr<double>();
  for (const auto& row : rows) {
    if (row.size() != cols) {
      throw std::logic_error("stateMatrix: rows of unequal length");
    }
    data = std::copy(row.begin(), row.end(), data);
  }
  return out;
}

std::vector<std::vector<double>> matrixRows(const torch::Tensor& matrix) {
  const std::vector<double> flat = toDoubles(matrix);
  const auto rows = static_cast<std::size_t>(matrix.size(0));
  const auto cols = static_cast<std::size_t>(matrix.size(1));
  std::vector<std::vector<double>> out(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    out[r].assign(flat.begin() + static_cast<std::ptrdiff_t>(r * cols),
                  flat.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols));
  }
  return out;
}

const torch::Tensor& requireState(const StrategyState& state, const std::string& key, int64_t dims,
                                  const std::string& strategy) {
  const auto it = state.find(key);
  if (it == state.end()) {
    throw std::invalid_argument(fmt::format("{}: checkpoint state lacks '{}'", strategy, key));
  }
  if (!it->second.defined() || it->second.dim() != dims) {
    throw std::invalid_argument(
        fmt::format("{}: checkpoint state '{}' must have {} dimension(s), got {}", strategy, key,
                    dims, it->second.defined() ? it->second.dim() : -1));
  }
  return it->second;
}

}  // namespace fulcrum::detail
