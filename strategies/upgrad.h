// UPGrad: Quinton & Rey, "Jacobian Descent for Multi-Objective
// Optimization", 2024 (arXiv:2406.16232), the aggregator A_UPGrad of
// section 3 and its implementation in TorchJD (`UPGrad`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"
#include "strategies/gram.h"

namespace fulcrum {

/// Options of `name: upgrad`.
struct UpGradOptions {
  /// `pref_weights`: the preference vector p, one entry per task, each
  /// finite and ≥ 0, at least one > 0. Default 1/T for every task (the
  /// paper's mean; TorchJD's default `pref_vector`).
  std::vector<double> prefWeights;
  /// `norm_eps`: ≥ 0. M is divided by its trace (the squared Frobenius norm
  /// of G) when the trace is ≥ norm_eps, and replaced by 0 otherwise.
  /// Default 1e-4 (TorchJD).
  double normEps = 1e-4;
  /// `reg_eps`: ≥ 0, added to the diagonal of the normalised M so that it is
  /// positive definite. Default 1e-4 (TorchJD).
  double regEps = 1e-4;
  /// `gradients`: parameters | representation. Default parameters.
  detail::GradientSpace gradients = detail::GradientSpace::kParameters;
  /// `head_weights`: one | lambda. Default one: each head gets its own
  /// task's gradient, as TorchJD's mtl_backward does for the task-specific
  /// parameters; lambda scales head i by λ̄_i (> 0).
  bool lambdaOnHeads = false;
  /// `max_iterations`: active-set iterations per projection, ≥ 1. Default 1000.
  int64_t maxIterations = 1000;
};

/// Reads and validates the options above.
UpGradOptions readUpGradOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// UPGrad projects every task gradient onto the dual cone
/// C = {v : G v ≥ 0} of the task gradients and combines the projections with
/// the preference weights p (the mean by default):
/// \f[ d = \sum_i p_i\, \pi_C(g_i) = G^\top \bar\lambda, \qquad
///     \bar\lambda = \sum_i p_i \lambda^{(i)}, \qquad
///     \lambda^{(i)} = \arg\min_{\lambda \ge e_i} \lambda^\top M \lambda \f]
/// with M = G Gᵀ (the paper's Proposition 1: π_C(Gᵀu) = Gᵀλ with λ the
/// solution of that QP for the bound u). Each QP is solved on the host in
/// double by solveLowerBoundedQp. As TorchJD, M is first normalised by its
/// trace and regularised, M' = M/tr(M) + reg_eps·I (which leaves λ unchanged
/// up to the regularisation); d uses the raw G, so it scales linearly with G.
/// Since G d = Σ_i p_i M λ⁽ⁱ⁾ and the KKT conditions give M λ⁽ⁱ⁾ ≥ 0, d
/// conflicts with no task (up to reg_eps); with no conflict at all (every
/// g_i·g_j ≥ 0), λ⁽ⁱ⁾ = e_i and d = Σ p_i g_i. Weights: 1 (or λ̄ with
/// head_weights: lambda). Diagnostics: the most active-set iterations of
/// the T projections, and λ̄ per task.
class UpGrad final : public Strategy {
 public:
  /// `options.prefWeights` must be empty (1/T each) or one per task.
  UpGrad(UpGradOptions options, std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return detail::needOf(options_.gradients); }
  void attach(const StrategyContext& context) override;
  StepOutput step(const StepInput& input) override;
  /// "iterations", then "lambda_<task>" for every task.
  std::vector<std::string> diagnosticNames() const override;

 private:
  UpGradOptions options_;
  std::vector<TaskSpec> tasks_;
};

/// λ̄ = Σ_i p_i λ⁽ⁱ⁾ for the Gram matrix `gram` (normalised and regularised
/// as above); `iterations` receives the largest solver iteration count.
std::vector<double> upgradWeights(const detail::Gram& gram, const std::vector<double>& pref,
                                  double normEps, double regEps, int64_t maxIterations,
                                  int64_t* iterations = nullptr);

}  // namespace fulcrum
