#include "framework/task.h"

#include <stdexcept>

namespace fulcrum {

std::string toString(TaskKind kind) {
  switch (kind) {
    case TaskKind::kRegression:
      return "regression";
    case TaskKind::kClassification:
      return "classification";
    case TaskKind::kBinary:
      return "binary";
  }
  // Only reachable through a value cast from an integer outside the enum.
  throw std::invalid_argument("toString(TaskKind): invalid value " +
                              std::to_string(static_cast<int>(kind)));
}

std::vector<std::string> metricNames(TaskKind kind) {
  switch (kind) {
    case TaskKind::kRegression:
      return {"loss", "mse", "mae"};
    case TaskKind::kClassification:
    case TaskKind::kBinary:
      return {"loss", "accuracy"};
  }
  throw std::invalid_argument("metricNames(TaskKind): invalid value " +
                              std::to_string(static_cast<int>(kind)));
}

bool higherIsBetter(const std::string& metric) { return metric == "accuracy"; }

}  // namespace fulcrum
