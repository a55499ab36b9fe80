// CAGrad: Liu, Liu, Jin, Stone, Liu, "Conflict-Averse Gradient Descent for
// Multi-task Learning", NeurIPS 2021, Algorithm 1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"
#include "strategies/gram.h"

namespace fulcrum {

/// Options of `name: cagrad`.
struct CaGradOptions {
  /// `c`: radius of the ball around g₀ in units of ‖g₀‖, in [0, 100]. Default
  /// 0.5 (the paper's multi-task setting). c = 0 is plain averaging.
  double c = 0.5;
  /// `rescale`: 0 | 1 | 2 — the output is d, d/(1+c²) or d/(1+c). Default 1,
  /// as in the paper's released experiments; 0 is Algorithm 1's d as written.
  int64_t rescale = 1;
  /// `gradients`: parameters | representation. Default parameters.
  detail::GradientSpace gradients = detail::GradientSpace::kParameters;
  /// `max_iterations`: dual solver iterations, ≥ 1. Default 1000.
  int64_t maxIterations = 1000;
};

/// Reads and validates the options above.
CaGradOptions readCaGradOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// CAGrad: the update maximises the worst local improvement of the tasks
/// within a ball around the mean gradient g₀ = (1/T) Σ_i g_i,
/// \f[ \max_d \min_i g_i^\top d \quad \text{s.t.} \quad \|d - g_0\| \le c\,\|g_0\| \f]
/// through its dual over the simplex (solveCagradDual), with φ = c²‖g₀‖²:
/// \f[ w^* = \arg\min_{w\in\Delta_T} g_w^\top g_0 + \sqrt{\phi}\,\|g_w\|, \qquad
///     d = g_0 + \frac{\sqrt{\phi}}{\|g_{w^*}\|}\, g_{w^*} \f]
/// then rescaled by `rescale`. When ‖g_w*‖ = 0 (0 in the hull) or φ = 0, d = g₀.
/// Weights: 1 (each head its own task's gradient). Diagnostics: solver
/// iterations and the effective weight of each task's gradient in d.
class CaGrad final : public Strategy {
 public:
  CaGrad(CaGradOptions options, std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return detail::needOf(options_.gradients); }
  void attach(const StrategyContext& context) override;
  StepOutput step(const StepInput& input) override;
  /// "iterations", then "weight_<task>" for every task.
  std::vector<std::string> diagnosticNames() const override;

 private:
  CaGradOptions options_;
  std::vector<TaskSpec> tasks_;
};

}  // namespace fulcrum
