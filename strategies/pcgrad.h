// PCGrad ("gradient surgery"): Yu, Kumar, Gupta, Levine, Hausman, Finn,
// "Gradient Surgery for Multi-Task Learning", NeurIPS 2020, Algorithm 1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"
#include "strategies/gram.h"

namespace fulcrum {

/// Options of `name: pcgrad`.
struct PcGradOptions {
  /// `gradients`: parameters | representation. Default parameters (the paper).
  detail::GradientSpace gradients = detail::GradientSpace::kParameters;
};

/// Reads and validates the options above.
PcGradOptions readPcGradOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// PCGrad: for each task i, starting from g_i^PC = g_i, visit the other tasks
/// j in a random order and, where they conflict, project onto the normal
/// plane of g_j:
/// \f[ \text{if } g_i^{PC}\cdot g_j < 0:\quad
///     g_i^{PC} \leftarrow g_i^{PC} - \frac{g_i^{PC}\cdot g_j}{\|g_j\|^2}\, g_j,
///     \qquad d = \sum_i g_i^{PC} \f]
/// (the paper sums). Computed on the Gram matrix: each g_i^PC = Σ_k C_ik g_k
/// is tracked by its coefficients, so d = (1ᵀC) G. The order is drawn per
/// step and per task from StrategyContext::seed and the step number, so runs
/// are deterministic and need no state. Weights: 1 (each head its own task's
/// gradient). Diagnostics: projections made, and the effective weight
/// (1ᵀC)_i of each task's gradient in d.
class PcGrad final : public Strategy {
 public:
  PcGrad(PcGradOptions options, std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return detail::needOf(options_.gradients); }
  /// Takes the seed.
  void attach(const StrategyContext& context) override;
  StepOutput step(const StepInput& input) override;
  /// "projections", then "weight_<task>" for every task.
  std::vector<std::string> diagnosticNames() const override;

 private:
  PcGradOptions options_;
  std::vector<TaskSpec> tasks_;
  uint64_t seed_ = 0;
};

}  // namespace fulcrum
