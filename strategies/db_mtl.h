// DB-MTL: Lin, Jiang, Ye, Zhang, Chen, Chen, Liu, Kwok, "Dual-Balancing for
// Multi-Task Learning" (arXiv:2308.12029, 2023), as implemented by LibMTL's
// DB_MTL.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum {

/// Options of `name: db_mtl`.
struct DbMtlOptions {
  /// `beta`: β in [0, 1), the EMA factor of the log-loss gradients. Default
  /// 0.9 (the paper's and LibMTL's DB_beta).
  double beta = 0.9;
  /// `beta_sigma`: σ ≥ 0; step t (from 1) uses β_t = β / t^σ. Default 0, a
  /// constant β (LibMTL's DB_beta_sigma).
  double betaSigma = 0.0;
};

/// Reads and validates the options above.
DbMtlOptions readDbMtlOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// DB-MTL balances the loss scales through the logarithm and the gradient
/// magnitudes through the largest gradient norm. With ε = 1e-8 (LibMTL's):
/// - loss-scale balancing: the task gradients are those of log(L_i + ε),
///   g_i^log = g_i / (L_i + ε), taken from the ordinary gradient matrix;
/// - an EMA of them, started at 0 (no bias correction, as LibMTL), at step t ≥ 1:
///   \f[ \hat g_i \leftarrow \beta_t \hat g_i + (1 - \beta_t)\, g_i^{\log},
///       \qquad \beta_t = \beta / t^{\sigma} \f]
/// - gradient-magnitude balancing: every ĝ_i is scaled to the largest norm
///   and the results are summed (LibMTL sums; the paper's update is the same sum):
///   \f[ d = \sum_i \frac{\max_j \|\hat g_j\|}{\|\hat g_i\|}\, \hat g_i \f]
///   (a zero ĝ_i contributes nothing; LibMTL divides by ‖ĝ_i‖ + 1e-8).
/// Only the shared parameters' gradients (LibMTL rejects representation
/// gradients: an EMA over different batches' representations is meaningless).
/// Weights: 1/(L_i + ε), so that head i receives ∂log(L_i + ε)/∂φ_i, the
/// gradient of the method's objective Σ_i log(L_i + ε) — what LibMTL's heads
/// get from backward() on the log-losses. Every L_i + ε must be > 0.
/// Diagnostics: ‖ĝ_i‖ and the scale max_j‖ĝ_j‖/‖ĝ_i‖ per task.
class DbMtl final : public Strategy {
 public:
  DbMtl(DbMtlOptions options, std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return GradientNeed::kSharedParameters; }
  /// Resets the EMA (allocated at the first step, on the gradients' device and dtype).
  void attach(const StrategyContext& context) override;
  StepOutput step(const StepInput& input) override;
  /// "norm_<task>" for every task, then "scale_<task>" for every task.
  std::vector<std::string> diagnosticNames() const override;
  /// "ema": ĝ (T × P, float64; T × 0 before the first step), "steps": t (int64 scalar).
  StrategyState state() const override;
  void loadState(const StrategyState& state) override;

 private:
  void requireAttached(const char* what) const;
  DbMtlOptions options_;
  std::vector<TaskSpec> tasks_;
  bool attached_ = false;
  torch::Tensor ema_;  // T × P on the gradients' device and dtype; undefined before the first step
  int64_t steps_ = 0;
};

}  // namespace fulcrum
