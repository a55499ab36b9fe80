// Single-task learning inside the multi-task runner: the baseline that
// Δm% is measured against in the MTL literature (`compare --baseline stl`).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum {

/// Reads `task` (a task's name; default the first task): its index, or a
/// ConfigError at the key listing the tasks.
std::size_t readStlTask(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// Trains one task alone: the objective is L_k, every other task's weight
/// 0, so the shared parameters and task k's head learn from task k only and
/// the other heads never move. On hard sharing this is the single-task
/// network of the literature's tables (the trunk and one head); the other
/// tasks' metrics in its file are those of untrained heads (compare leaves
/// them out). Needs the losses only.
class SingleTask final : public Strategy {
 public:
  /// `task` must index `tasks` (std::invalid_argument otherwise).
  SingleTask(std::size_t task, std::vector<TaskSpec> tasks);

  GradientNeed needs() const override { return GradientNeed::kLosses; }
  void attach(const StrategyContext& context) override;
  /// Objective L_k; weights one-hot at k.
  StepOutput step(const StepInput& input) override;
  /// A batch without task k's label gives L_k an exact zero: no update.
  bool handlesAbsentTasks() const override { return true; }

 private:
  std::size_t task_;
  std::vector<TaskSpec> tasks_;
};

}  // namespace fulcrum
