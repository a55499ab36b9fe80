// GradDrop: Chen, Ngiam, Huang, Luong, Kretzschmar, Chai, Anguelov, "Just
// Pick a Sign: Optimizing Deep Multitask Models with Gradient Sign Dropout",
// NeurIPS 2020, Algorithm 1 (eq. 1 for the sign purity).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum {

/// Options of `name: graddrop`.
struct GradDropOptions {
  /// `leak`: ℓ_i in [0, 1], how much of task i's gradient passes unmasked:
  /// one number for every task or a list of one per task. Default 0 (the
  /// paper's "pure" GradDrop, as LibMTL). ℓ = 1 is the plain sum.
  std::vector<double> leaks;
};

/// Reads and validates the options above (leaks has one entry per task).
GradDropOptions readGradDropOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// GradDrop on the representation gradients g_i = ∂L_i/∂z (T × B·D). Per
/// element, with the Gradient Positive Sign Purity P and U ~ Uniform(0, 1):
/// \f[ P = \tfrac12\Big(1 + \frac{\sum_i g_i}{\sum_i |g_i|}\Big),\quad
///     M_i = \mathbb{1}[P > U]\,\mathbb{1}[g_i > 0] + \mathbb{1}[P < U]\,\mathbb{1}[g_i < 0],
///     \quad d = \sum_i \big(\ell_i + (1-\ell_i) M_i\big)\, g_i \f]
/// so each element keeps the positive or the negative task gradients, the
/// positive ones with probability P (f is the identity, the paper's choice).
///
/// Where this follows the combination steps of Algorithm 1 and not all of
/// it: the paper multiplies by sgn(z) and, for a batched z, sums over the
/// batch before computing P and M (G_i = Σ_batch sgn(z)∘∇_z L_i; LibMTL and
/// the authors' lingvo layer do the same). The GradientSource gives neither
/// z nor the batch layout, so P and M are per element of the flattened B·D
/// gradient, as TorchJD's GradDrop. Without the batch sum the sgn(z) factor
/// changes no mask's distribution (it maps P to 1 − P and swaps the signs,
/// and U and 1 − U are alike), except where z = 0, where the paper drops
/// every task's gradient (when z is a ReLU output nothing flows below a
/// zero z anyway). The authors' layer also rescales the result's norm by
/// default (`keep_gradnorm_constant`); the paper does not, nor does
/// this. An element whose task gradients are all 0 has P = ½ (the paper's
/// 0/0; LibMTL's 1e-7 guard gives the same) and contributes 0; an element
/// with g_i = 0 keeps nothing of task i, which is 0 anyway.
///
/// U comes from a 64-bit Mersenne Twister seeded per step from
/// StrategyContext::seed and the number of steps drawn so far (state), so
/// runs are deterministic on every platform and a restored strategy
/// continues the same sequence. Each U is (2k + 1)/2^24 for a 23-bit k:
/// exact in float32 and float64 (the test against P rounds no U), and
/// never 0 or 1, so an element whose task gradients share one sign (P = 1
/// or 0) always keeps them all.
/// Weights: 1 (each head its own task's gradient). Diagnostics:
/// "kept_fraction", the share of the nonzero task-gradient entries kept
/// (M_i = 1), and "conflict_fraction", the share of elements where the
/// task gradients' signs disagree (0 < P < 1).
class GradDrop final : public Strategy {
 public:
  GradDrop(GradDropOptions options, std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return GradientNeed::kRepresentation; }
  /// Takes the seed; restarts the sequence of U.
  void attach(const StrategyContext& context) override;
  StepOutput step(const StepInput& input) override;
  /// "kept_fraction", "conflict_fraction".
  std::vector<std::string> diagnosticNames() const override;
  /// "seed" and "steps_drawn" (int64 scalars).
  StrategyState state() const override;
  void loadState(const StrategyState& state) override;

 private:
  GradDropOptions options_;
  std::vector<TaskSpec> tasks_;
  uint64_t seed_ = 0;
  int64_t stepsDrawn_ = 0;
};

namespace detail {

/// One GradDrop combination.
struct GradDropResult {
  torch::Tensor direction;  ///< N, on g's device and in its dtype
  int64_t kept = 0;         ///< nonzero entries g_ik with M_ik = 1
  int64_t nonzero = 0;      ///< nonzero entries g_ik
  int64_t conflicting = 0;  ///< elements k with 0 < P_k < 1
};

/// GradDrop's d for the T×N matrix `g` (rows g_i) with the uniforms `u` (N
/// values in (0, 1)) and the T leaks. Throws std::invalid_argument naming
/// "graddrop" unless g is a finite T×N matrix, u has N entries and there
/// are T leaks.
GradDropResult gradDropCombine(const torch::Tensor& g, const torch::Tensor& u,
                               const std::vector<double>& leaks);

/// N uniforms (2k + 1)/2^24 in (0, 1) as float64 on the CPU, drawn from a
/// 64-bit Mersenne Twister seeded from (seed, draw): the U of GradDrop's
/// draw-th step.
torch::Tensor gradDropUniforms(uint64_t seed, int64_t draw, int64_t n);

}  // namespace detail

}  // namespace fulcrum
