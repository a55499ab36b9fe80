// IMTL-L, the loss-balance half of IMTL: Liu, Li, Kuang, Xue, Chen, Yang,
// Liao, Zhang, "Towards Impartial Multi-task Learning", ICLR 2021.
#pragma once

#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum {

/// Options of `name: imtl_l`.
struct ImtlLOptions {
  /// `init_scale`: initial s_i for every task, in [-30, 30]. Default 0 (weights 1).
  double initScale = 0.0;
};

/// Reads and validates the options above.
ImtlLOptions readImtlLOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// IMTL-L: learnable log-scales s_i, trained with the model's optimizer
/// (no weight decay):
/// \f[ L = \sum_i \left( e^{s_i} L_i - s_i \right) \f]
/// \f$ \partial L/\partial s_i = e^{s_i} L_i - 1 \f$ vanishes where the
/// scaled loss \f$ e^{s_i} L_i \f$ equals 1 for every task: the losses are
/// balanced to one scale whatever their units. Reported weights: e^{s_i}.
class ImtlL final : public Strategy {
 public:
  ImtlL(ImtlLOptions options, std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return GradientNeed::kLosses; }
  /// Creates s on the model's device and dtype.
  void attach(const StrategyContext& context) override;
  /// {s}; valid after attach().
  std::vector<torch::Tensor> parameters() override;
  StepOutput step(const StepInput& input) override;
  /// An absent task's whole term e^{s_i}L_i − s_i is left out, so s_i is not updated.
  bool handlesAbsentTasks() const override { return true; }
  /// "scale": s (T).
  StrategyState state() const override;
  void loadState(const StrategyState& state) override;

 private:
  void requireAttached(const char* what) const;
  ImtlLOptions options_;
  std::vector<TaskSpec> tasks_;
  torch::Tensor scale_;
};

}  // namespace fulcrum
