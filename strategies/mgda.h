// MGDA: Sener & Koltun, "Multi-Task Learning as Multi-Objective
// Optimization", NeurIPS 2018 (with MGDA-UB, its upper-bound variant on the
// representation gradients, section 3.3).
#pragma once

#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"
#include "strategies/gram.h"

namespace fulcrum {

/// How the task gradients are normalised before the min-norm problem (the
/// normalisations of the paper's code).
enum class MgdaNormalization {
  kNone,     ///< g_i
  kL2,       ///< g_i / ‖g_i‖
  kLoss,     ///< g_i / L_i
  kLossPlus  ///< g_i / (L_i ‖g_i‖)
};

/// Options of `name: mgda`.
struct MgdaOptions {
  /// `normalization`: none | l2 | loss | loss+. Default none (the paper's problem).
  MgdaNormalization normalization = MgdaNormalization::kNone;
  /// `gradients`: parameters | representation (MGDA-UB). Default parameters.
  detail::GradientSpace gradients = detail::GradientSpace::kParameters;
  /// `head_weights`: one | alpha. Default one: each head gets its own task's
  /// gradient, as in the paper's Algorithm 2; alpha scales head i by α_i as
  /// the paper's code does (it back-propagates Σ α_i L_i).
  bool alphaOnHeads = false;
  /// `max_iterations`: Frank-Wolfe iterations, ≥ 1. Default 250.
  int64_t maxIterations = 250;
  /// `tolerance`: stop when Σ|Δα| is below it, > 0. Default 1e-5.
  double tolerance = 1e-5;
};

/// Reads and validates the options above.
MgdaOptions readMgdaOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// MGDA: the shared update is the min-norm point of the convex hull of the
/// (normalised) task gradients n_i⁻¹ g_i,
/// \f[ \alpha = \arg\min_{\alpha \in \Delta_T} \Big\| \sum_i \alpha_i\, g_i / n_i \Big\|^2,
///     \qquad d = \sum_i \alpha_i\, g_i \f]
/// (Frank-Wolfe; closed form for T = 2). As in the paper's code, α is found on
/// the normalised gradients and applied to the raw ones (its loss is
/// Σ α_i L_i). With `gradients: representation` the g_i are ∂L_i/∂z and d is
/// the gradient on z (MGDA-UB). Weights: 1 (or α with head_weights: alpha).
/// Diagnostics: the solver's iterations and α per task.
class Mgda final : public Strategy {
 public:
  Mgda(MgdaOptions options, std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return detail::needOf(options_.gradients); }
  void attach(const StrategyContext& context) override;
  StepOutput step(const StepInput& input) override;
  /// "iterations", then "alpha_<task>" for every task.
  std::vector<std::string> diagnosticNames() const override;

 private:
  MgdaOptions options_;
  std::vector<TaskSpec> tasks_;
};

}  // namespace fulcrum
