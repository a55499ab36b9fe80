// GradVac: Wang, Tsvetkov, Firat, Cao, "Gradient Vaccine: Investigating and
// Improving Multi-task Optimization in Massively Multilingual Models",
// ICLR 2021, Algorithm 1 (the update of eq. 2, the EMA target of eq. 3).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"
#include "strategies/gram.h"

namespace fulcrum {

/// When GradVac moves a pair's target φ̂_ij.
enum class GradVacEmaUpdate {
  kAlways,        ///< after every visit of the pair (the paper's Algorithm 1)
  kOnCorrection,  ///< only when the pair was corrected (LibMTL's GradVac.py)
};

/// Options of `name: gradvac`.
struct GradVacOptions {
  /// `beta`: β, the EMA rate of the targets, in [0, 1]. Default 0.5 (LibMTL's
  /// and TorchJD's default; the paper leaves β to its experiments). β = 0
  /// keeps every target at 0, which is PCGrad.
  double beta = 0.5;
  /// `ema_update`: always | on_correction. Default always (the paper).
  GradVacEmaUpdate emaUpdate = GradVacEmaUpdate::kAlways;
  /// `gradients`: parameters | representation. Default parameters (the paper).
  detail::GradientSpace gradients = detail::GradientSpace::kParameters;
};

/// Reads and validates the options above.
GradVacOptions readGradVacOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// GradVac keeps a target cosine φ̂_ij for every ordered pair of tasks
/// (initially 0). Each step, for each task i, starting from g_i' = g_i, it
/// visits the other tasks j in a random order:
/// \f[ \phi_{ij} = \frac{g_i'\cdot g_j}{\|g_i'\|\,\|g_j\|};\quad
///     \text{if } \phi_{ij} < \hat\phi_{ij}:\;
///     g_i' \leftarrow g_i' + \frac{\|g_i'\|\big(\hat\phi_{ij}\sqrt{1-\phi_{ij}^2}
///       - \phi_{ij}\sqrt{1-\hat\phi_{ij}^2}\big)}{\|g_j\|\sqrt{1-\hat\phi_{ij}^2}}\, g_j;
///     \quad \hat\phi_{ij} \leftarrow (1-\beta)\hat\phi_{ij} + \beta\,\phi_{ij},
///     \qquad d = \sum_i g_i' \f]
/// As in Algorithm 1: φ_ij is the cosine of the gradient modified so far
/// (g_i') with the ORIGINAL g_j, measured before this pair's correction; the
/// correction makes that cosine exactly φ̂_ij; the EMA takes the measured
/// φ_ij after the test, whether or not it corrected (LibMTL updates only
/// when it corrects: `ema_update: on_correction`). With φ̂ = 0 the
/// correction is PCGrad's projection.
///
/// Granularity: the paper applies this per parameter group θ_k (one φ̂_ijk
/// per group); the StrategyContext carries no parameter boundaries, so this
/// is the whole-model form (LibMTL's default `group_type` 0): one φ̂_ij over
/// all shared parameters (or over the representation with `gradients:
/// representation`).
///
/// A pair with a zero g_i' or g_j has no cosine: it is neither corrected
/// nor moves φ̂_ij. A target φ̂_ij = 1 cannot be reached by adding a
/// multiple of g_j, so such a pair is not corrected (the EMA still moves).
/// Computed on the Gram matrix (the T×T work in double on the host), as
/// PCGrad: g_i' = Σ_k C_ik g_k, d = (1ᵀC) G. The orders are drawn per step
/// and per task from StrategyContext::seed and the step number.
/// Weights: 1 (each head its own task's gradient). Diagnostics: corrections
/// made, and the effective weight (1ᵀC)_i of each task's gradient in d.
class GradVac final : public Strategy {
 public:
  GradVac(GradVacOptions options, std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return detail::needOf(options_.gradients); }
  /// Takes the seed; resets every target φ̂_ij to 0.
  void attach(const StrategyContext& context) override;
  StepOutput step(const StepInput& input) override;
  /// "corrections", then "weight_<task>" for every task.
  std::vector<std::string> diagnosticNames() const override;
  /// "targets": φ̂ as a T×T float64 matrix, row i column j (diagonal 0).
  StrategyState state() const override;
  /// Throws std::invalid_argument unless "targets" is T×T with entries in [−1, 1].
  void loadState(const StrategyState& state) override;

  /// The current targets φ̂ (T×T, row-major rows).
  const std::vector<std::vector<double>>& targets() const { return targets_; }

 private:
  GradVacOptions options_;
  std::vector<TaskSpec> tasks_;
  uint64_t seed_ = 0;
  std::vector<std::vector<double>> targets_;
};

}  // namespace fulcrum
