// GLS, the geometric loss strategy: Chennupati, Sistu, Yogamani, Rawashdeh,
// "MultiNet++: Multi-Stream Feature Aggregation and Geometric Loss Strategy
// for Multi-Task Learning", CVPR Workshops 2019.
#pragma once

#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum {

/// GLS has no options; reading checks that none are given.
void readGlsOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// The geometric mean of the losses:
/// \f[ L = \Big(\prod_{i=1}^T L_i\Big)^{1/T} = \exp\Big(\tfrac1T \sum_i \log L_i\Big) \f]
/// computed in log space. Its effective weights, reported each step, are
/// \f$ \partial L/\partial L_i = L/(T L_i) \f$: a task with a small loss gets a
/// large weight. Every loss must be > 0; a zero loss gives an infinite weight,
/// which the trainer reports as a failed trial naming the task and step.
class GeometricLossStrategy final : public Strategy {
 public:
  explicit GeometricLossStrategy(std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return GradientNeed::kLosses; }
  void attach(const StrategyContext& context) override;
  StepOutput step(const StepInput& input) override;

 private:
  std::vector<TaskSpec> tasks_;
};

}  // namespace fulcrum
