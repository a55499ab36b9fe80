// Aligned-MTL: Senushkin, Patakin, Kuznetsov, Konushin, "Independent
// Component Alignment for Multi-Task Learning", CVPR 2023 (Algorithm 1;
// Aligned-MTL-UB with the representation gradients, section 4.3).
#pragma once

#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"
#include "strategies/gram.h"

namespace fulcrum {

/// Which singular value the aligned gradients are scaled to (the official
/// code's `scale_mode`).
enum class AlignedMtlScale {
  kMin,     ///< σ = √λ_min, the smallest non-zero eigenvalue (the paper's)
  kMedian,  ///< σ = √median(λ) (the lower median for an even count, as torch.median)
  kRmse,    ///< σ = √mean(λ)
};

/// Options of `name: aligned_mtl`.
struct AlignedMtlOptions {
  /// `weights`: the pre-defined task weights w, one per task, each finite
  /// and > 0. Default 1 for every task (the paper's Algorithm 1 and the
  /// official code sum the aligned gradients; TorchJD averages, w = 1/T).
  std::vector<double> weights;
  /// `scale`: min | median | rmse. Default min (the paper).
  AlignedMtlScale scale = AlignedMtlScale::kMin;
  /// `gradients`: parameters | representation (Aligned-MTL-UB). Default parameters.
  detail::GradientSpace gradients = detail::GradientSpace::kParameters;
  /// `head_weights`: one | alpha. Default one: each head gets its own
  /// task's gradient, as the official code by default (scale_decoder_grad:
  /// False); alpha scales head i by α_i (its scale_decoder_grad: True).
  /// α_i can be negative, which would make head i ascend its loss.
  bool alphaOnHeads = false;
};

/// Reads and validates the options above.
AlignedMtlOptions readAlignedMtlOptions(const ConfigNode& options,
                                        const std::vector<TaskSpec>& tasks);

/// The balance transformation of Aligned-MTL for a Gram matrix M = G Gᵀ.
struct AlignedMtlTransform {
  /// B = σ V Λ^{-1/2} Vᵀ over the kept eigenpairs (T×T, row-major): the
  /// aligned gradients are the rows of Ĝ = B G. The identity when rank = 0.
  detail::Gram b;
  double sigma = 0.0;  ///< the common singular value σ of Ĝ (0 when rank = 0)
  int64_t rank = 0;    ///< eigenvalues above the tolerance
};

/// Eigendecomposition of `gram` (M = V Λ Vᵀ, Jacobi, in double): the
/// eigenvalues λ > λ_max · T · ε₃₂ (ε₃₂ = 2⁻²³, the tolerance of the
/// official code and of LibMTL/TorchJD) are kept, the rest treated as 0.
AlignedMtlTransform alignedMtlTransform(const detail::Gram& gram, AlignedMtlScale scale);

/// Aligned-MTL makes the task gradients orthogonal with equal norms σ by
/// the eigendecomposition M = G Gᵀ = V Λ Vᵀ (rank r, λ_1 ≥ … ≥ λ_r > 0):
/// \f[ \hat G = \sigma\, V \Lambda^{-1/2} V^\top G, \qquad
///     \hat G \hat G^\top = \sigma^2\, V V^\top, \qquad \sigma = \sqrt{\lambda_r} \f]
/// and the shared update is the weighted sum of the aligned gradients,
/// written as weights on the original ones so that only T×T work is done:
/// \f[ d = \hat G^\top w = G^\top \alpha, \qquad \alpha = \sigma V \Lambda^{-1/2} V^\top w. \f]
/// (Ĝ Ĝᵀ = σ² I when G has full row rank.) This is the official code's
/// ProcrustesSolver and LibMTL's Aligned_MTL, with the same rank tolerance;
/// the paper's text takes σ_min of G, i.e. of the kept eigenvalues.
/// d is invariant to a rotation of the parameter space (it depends on G only
/// through M) and scales linearly with G. With `gradients: representation`
/// the g_i are ∂L_i/∂z and d the gradient on z (Aligned-MTL-UB). Weights: 1
/// (or α with head_weights: alpha). Diagnostics: the rank, σ, and α per task.
class AlignedMtl final : public Strategy {
 public:
  /// `options.weights` must be empty (all 1) or hold one weight > 0 per task.
  AlignedMtl(AlignedMtlOptions options, std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return detail::needOf(options_.gradients); }
  void attach(const StrategyContext& context) override;
  StepOutput step(const StepInput& input) override;
  /// "rank", "sigma", then "alpha_<task>" for every task.
  std::vector<std::string> diagnosticNames() const override;

 private:
  AlignedMtlOptions options_;
  std::vector<TaskSpec> tasks_;
};

}  // namespace fulcrum
