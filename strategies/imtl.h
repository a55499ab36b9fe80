// IMTL-G, the gradient-balance half of IMTL, and its hybrid with IMTL-L:
// Liu, Li, Kuang, Xue, Chen, Yang, Liao, Zhang, "Towards Impartial
// Multi-task Learning", ICLR 2021 (section 3.2; the hybrid in Algorithm 1).
#pragma once

#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"
#include "strategies/gram.h"

namespace fulcrum {

/// Options of `name: imtl`.
struct ImtlOptions {
  /// `mode`: gradient (IMTL-G) | hybrid (IMTL-G on the gradients of the
  /// IMTL-L-scaled losses e^{s_i} L_i, s learned). Default hybrid, the
  /// paper's full method.
  bool hybrid = true;
  /// `init_scale`: initial s_i in hybrid mode, in [-30, 30]. Default 0.
  double initScale = 0.0;
  /// `gradients`: parameters | representation. Default parameters.
  detail::GradientSpace gradients = detail::GradientSpace::kParameters;
};

/// Reads and validates the options above.
ImtlOptions readImtlOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// IMTL-G: the shared update d = Σ_i α_i g_i with Σ_i α_i = 1 whose
/// projections on all unit task gradients u_i = g_i/‖g_i‖ are equal
/// (d·u_1 = d·u_t for all t). In closed form, with the rows
/// D = [g_1 − g_2; …; g_1 − g_T] and U = [u_1 − u_2; …; u_1 − u_T],
/// \f[ \alpha_{2:T} = g_1 U^\top (D U^\top)^{-1}, \qquad
///     \alpha_1 = 1 - \textstyle\sum_{t\ge2} \alpha_t \f]
/// (computed on the Gram matrix; a pseudo-inverse when D Uᵀ is singular, e.g.
/// parallel gradients, where any such α is a solution). The direction of d
/// does not depend on the gradients' scales; its length does.
/// Hybrid: g_i is replaced by e^{s_i} g_i (the gradient of e^{s_i} L_i) and
/// s_i, returned by parameters(), gets the gradient ∂/∂s_i (e^{s_i} L_i − s_i)
/// = e^{s_i} L_i − 1 written into s.grad by step(). Weights: 1, or e^{s_i}
/// in hybrid mode (the heads' gradients of e^{s_i} L_i). Diagnostics: α.
class Imtl final : public Strategy {
 public:
  Imtl(ImtlOptions options, std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return detail::needOf(options_.gradients); }
  /// In hybrid mode, creates s on the model's device and dtype.
  void attach(const StrategyContext& context) override;
  /// {s} in hybrid mode, else none.
  std::vector<torch::Tensor> parameters() override;
  StepOutput step(const StepInput& input) override;
  /// "alpha_<task>" for every task.
  std::vector<std::string> diagnosticNames() const override;
  /// Hybrid: "scale": s (T); gradient mode: nothing.
  StrategyState state() const override;
  void loadState(const StrategyState& state) override;

 private:
  void requireAttached(const char* what) const;
  ImtlOptions options_;
  std::vector<TaskSpec> tasks_;
  bool attached_ = false;
  torch::Tensor scale_;
};

/// The IMTL-G weights α (summing to 1) for the vectors with Gram matrix `gram`.
std::vector<double> imtlGradientWeights(const detail::Gram& gram);

}  // namespace fulcrum
