// FAMO: Liu, Feng, Stone, Liu, "FAMO: Fast Adaptive Multitask Optimization",
// NeurIPS 2023.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum {

/// Where FAMO's losses after the model step come from.
enum class FamoLossAfter {
  kSecondPass,  ///< a no-grad forward pass on the same batch after the step (the paper's)
  kNextStep,    ///< the next step's losses, on the next batch (no extra pass)
};

/// Options of `name: famo`.
struct FamoOptions {
  /// `lr`: β > 0, Adam learning rate of the logits ξ. Default 0.025 (the paper's).
  double lr = 0.025;
  /// `weight_decay`: γ >= 0, L2 penalty on ξ added to its gradient (as Adam's
  /// weight_decay). Default 1e-3 (the paper's Algorithm 2 and LibMTL).
  double weightDecay = 1e-3;
  /// `loss_after`: `second_pass` (default) or `next_step`.
  FamoLossAfter lossAfter = FamoLossAfter::kSecondPass;
};

/// Reads and validates the options above.
FamoOptions readFamoOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks);

/// FAMO keeps logits ξ (initially 0) and task weights z = softmax(ξ).
/// Each step the model follows (z and c held constant, ε = 1e-8 as in the
/// authors' code)
/// \f[ L = c \sum_i z_i \log(L_i + \epsilon),\qquad
///     c = \Big(\sum_i z_i / (L_i + \epsilon)\Big)^{-1}, \f]
/// whose gradient is the convex combination
/// \f$ \sum_i w_i \nabla L_i \f$ with \f$ w_i = c z_i / (L_i + \epsilon) \f$:
/// the reported weights (they sum to 1). After the model step, with
/// \f$ \delta_i = \log(L_i^{before} + \epsilon) - \log(L_i^{after} + \epsilon) \f$,
/// the logits take one Adam step (β₁ 0.9, β₂ 0.999, eps 1e-8) on
/// \f[ g_i = z_i \Big(\delta_i - \sum_j z_j \delta_j\Big) + \gamma \xi_i, \f]
/// i.e. \f$ J_z(\xi)^\top \delta + \gamma \xi \f$. This lowers the weight of
/// the tasks whose log-loss fell most: a task whose loss decreases less
/// gets more weight.
/// `loss_after: second_pass` asks the trainer for the losses on the same
/// batch after the step (wantsLossesAfterStep); `next_step` uses the next
/// step's losses as "after", updating ξ at the start of that step.
/// Diagnostics "z_<task>" report z. Every loss must be >= 0.
class Famo final : public Strategy {
 public:
  Famo(FamoOptions options, std::vector<TaskSpec> tasks);
  GradientNeed needs() const override { return GradientNeed::kLosses; }
  void attach(const StrategyContext& context) override;
  /// Throws std::logic_error in `second_pass` mode if the previous step's
  /// afterStep() never came.
  StepOutput step(const StepInput& input) override;
  bool wantsLossesAfterStep() const override;
  /// Updates ξ from the losses of the last step() before and after the model step.
  void afterStep(const std::vector<double>& lossesAfter) override;
  std::vector<std::string> diagnosticNames() const override;
  /// "logits" ξ, "adam_m", "adam_v" (T each), "adam_steps" (int64 scalar),
  /// "previous_losses" (T in `next_step` mode after a step, else 0 entries).
  StrategyState state() const override;
  void loadState(const StrategyState& state) override;

  /// z = softmax(ξ), the weights the next step starts from.
  std::vector<double> taskWeights() const;

 private:
  void updateLogits(const std::vector<double>& before, const std::vector<double>& after);

  FamoOptions options_;
  std::vector<TaskSpec> tasks_;
  std::vector<double> logits_, adamM_, adamV_;
  int64_t adamSteps_ = 0;
  std::vector<double> before_;  // losses of the step awaiting its "after" losses
};

}  // namespace fulcrum
