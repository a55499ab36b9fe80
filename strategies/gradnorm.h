// GradNorm: Chen, Badrinarayanan, Lee, Rabinovich, "GradNorm: Gradient
// Normalization for Adaptive Loss Balancing in Deep Multitask Networks",
// ICML 2018.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum {

/// Which shared parameters W the gradient norms are taken over.
enum class GradNormLayer {
  kLast,  ///< the last shared layer (the paper's choice): GradientNeed::kLastSharedLayer
  kAll,   ///< every shared parameter (as LibMTL does): GradientNeed::kSharedParameters
};

/// The optimiser of the task weights w.
enum class GradNormOptimizer {
  kAdam,  ///< Adam, β = (0.9, 0.999), ε = 1e-8, no weight decay (as PyTorch's defaults)
  kSgd,   ///< plain gradient descent w ← w − lr·∂L_grad/∂w
};

/// Options of `name: gradnorm`.
struct GradNormOptions {
  /// `alpha`: asymmetry α >= 0; 0 pulls every weighted norm to the mean.
  /// Default 1.5 (the paper's NYUv2 value and LibMTL's default; 0.12 on the toy).
  double alpha = 1.5;
  /// `lr`: learning rate of the weights' optimiser, > 0. Default 0.025.
  double lr = 0.025;
  /// `optimizer`: `adam` (default) or `sgd`.
  GradNormOptimizer optimizer = GradNormOptimizer::kAdam;
  /// `layer`: `last` (default) or `all`; see GradNormLayer.
  GradNormLayer layer = GradNormLayer::kLast;
  /// `min_weight`: after each update w_i is clamped to at least this, in
  /// (0, 1), before renormalising to Σ w = T. Default 1e-3.
  double minWeight = 1e-3;
};

/// Reads and validates the options above (ConfigError on a bad value).
GradNormOptions readGradNormOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// GradNorm (Algorithm 1 of the paper). Weights w_i start at 1 (Σ w = T).
/// At step t, with n_i = ‖∇_W L_i‖₂ (rows of the GradientSource matrix) and
/// L_i(0) the losses of the first step:
/// \f[ G_i = w_i n_i,\quad \tilde L_i = L_i(t)/L_i(0),\quad
///     r_i = \tilde L_i / \mathrm{mean}_j \tilde L_j,\quad \bar G = \mathrm{mean}_j G_j \f]
/// \f[ L_{grad} = \sum_i |G_i - \bar G r_i^\alpha|,\qquad
///     \partial L_{grad}/\partial w_i = \mathrm{sign}(G_i - \bar G r_i^\alpha)\, n_i \f]
/// the target \f$\bar G r_i^\alpha\f$ held constant, so the gradient is exact
/// in closed form. The model's objective is \f$\sum_i w_i L_i\f$ with the
/// weights as they were BEFORE this step's update (w detached); then w takes
/// one optimiser step on \f$\partial L_{grad}/\partial w\f$, is clamped to
/// `min_weight` and rescaled to Σ w = T (the paper's renormalisation).
/// If every L̃_j is 0, r_i = 1 for all i. Losses must be >= 0 and L_i(0) > 0
/// (std::runtime_error otherwise). Diagnostic "gradnorm_loss": L_grad of the
/// step, computed with the weights before the update.
class GradNorm final : public Strategy {
 public:
  GradNorm(GradNormOptions options, std::vector<TaskSpec> tasks);

  GradientNeed needs() const override;
  /// Checks that the model has the tasks this strategy was built for.
  void attach(const StrategyContext& context) override;
  StepOutput step(const StepInput& input) override;
  std::vector<std::string> diagnosticNames() const override { return {"gradnorm_loss"}; }
  /// "weights" (T), "adam_m", "adam_v" (T), "adam_steps" (scalar int64) and,
  /// once the first step has run, "initial_losses" (T). All on the CPU.
  StrategyState state() const override;
  void loadState(const StrategyState& state) override;

  /// The current weights w (the ones the next step applies).
  const std::vector<double>& weights() const { return weights_; }
  /// L(0); empty before the first step.
  const std::vector<double>& initialLosses() const { return initialLosses_; }

 private:
  void updateWeights(const std::vector<double>& gradient);

  GradNormOptions options_;
  std::vector<TaskSpec> tasks_;
  std::vector<double> weights_;
  std::vector<double> initialLosses_;
  std::vector<double> adamM_;  // first moment
  std::vector<double> adamV_;  // second moment
  int64_t adamSteps_ = 0;
};

}  // namespace fulcrum
