// RLW, random loss weighting: Lin, Ye, Xu, Shi, Zhang, "Reasonable
// Effectiveness of Random Weighting: A Litmus Test for Multi-Task Learning",
// TMLR 2022.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum {

/// Options of `name: rlw`.
struct RlwOptions {
  /// `scale`: what the weights sum to: `one` (default; the paper's softmax,
  /// as LibMTL) or `tasks` (sum T, comparable with equal weighting's
  /// weights of 1).
  bool sumToTasks = false;
};

/// Reads and validates the options above.
RlwOptions readRlwOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// Random loss weighting with normally distributed logits. Each step draws
/// \f$ \xi_i \sim N(0, 1) \f$ and applies
/// \f[ \lambda = \mathrm{softmax}(\xi),\qquad L = \sum_i \lambda_i L_i \f]
/// (times T with `scale: tasks`). The draws come from a 64-bit Mersenne
/// Twister seeded by the trial's seed and a Box–Muller transform written
/// here, so the weights are the same on every platform; state() stores the
/// number of draws so a restored strategy continues the same sequence.
class RandomLossWeighting final : public Strategy {
 public:
  RandomLossWeighting(RlwOptions options, std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return GradientNeed::kLosses; }
  /// Seeds the generator from context.seed.
  void attach(const StrategyContext& context) override;
  StepOutput step(const StepInput& input) override;
  /// An absent task's loss is an exact zero: Σ w_i L_i already leaves it out.
  bool handlesAbsentTasks() const override { return true; }
  /// "seed" and "uniforms_drawn" (scalars, int64).
  StrategyState state() const override;
  void loadState(const StrategyState& state) override;

 private:
  double uniform();
  double normal();

  RlwOptions options_;
  std::vector<TaskSpec> tasks_;
  uint64_t seed_ = 0;
  std::mt19937_64 engine_;
  int64_t drawn_ = 0;
};

}  // namespace fulcrum
