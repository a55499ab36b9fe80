// Tasks without a label in a batch (data with missing labels): the wrapper
// that lets any strategy skip them, by stepping a copy of itself built for the
// present tasks only.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"
#include "strategies/registry.h"

namespace fulcrum {

/// Wraps a strategy that does not handle StepInput::present itself.
///
/// Steps where every task is present go to the wrapped strategy unchanged.
/// On a step where tasks are absent, a copy of the strategy built by its
/// factory for the present tasks only (options whose value is a list of one
/// entry per task are cut to the present tasks) is stepped on the present
/// losses and the present rows of every gradient matrix; absent tasks get
/// weight 0, no loss and no gradient, and the wrapped strategy's own state is
/// left as it was. One copy per subset of present tasks, kept across steps
/// (so a copy's own state, e.g. Nash-MTL's warm start or GradVac's targets,
/// carries over from one such step to the next). The copy's learnable
/// parameters are not trained, and its diagnostics are not logged (NaN).
/// With no task present the update is zero.
class AbsentTaskAdapter : public Strategy {
 public:
  AbsentTaskAdapter(std::unique_ptr<Strategy> inner, StrategyFactory factory, const ConfigNode& options,
                    std::vector<TaskSpec> tasks);

  /// The wrapped strategy.
  Strategy& inner() { return *inner_; }

  GradientNeed needs() const override { return inner_->needs(); }
  void attach(const StrategyContext& context) override;
  std::vector<torch::Tensor> parameters() override { return inner_->parameters(); }
  StepOutput step(const StepInput& input) override;
  void onEpochEnd(const EpochStats& stats) override { inner_->onEpochEnd(stats); }
  bool wantsLossesAfterStep() const override { return inner_->wantsLossesAfterStep(); }
  void afterStep(const std::vector<double>& lossesAfter) override;
  bool handlesAbsentTasks() const override { return true; }
  std::vector<std::string> diagnosticNames() const override { return inner_->diagnosticNames(); }
  StrategyState state() const override { return inner_->state(); }
  void loadState(const StrategyState& state) override { inner_->loadState(state); }

 private:
  Strategy& copyFor(const std::vector<std::size_t>& present);

  std::unique_ptr<Strategy> inner_;
  StrategyFactory factory_;
  YAML::Node options_;
  std::string file_;
  std::string keyPath_;
  std::vector<TaskSpec> tasks_;
  StrategyContext context_;
  std::map<std::vector<std::size_t>, std::unique_ptr<Strategy>> copies_;
  Strategy* lastCopy_ = nullptr;                 ///< the copy stepped last, or null
  std::vector<std::size_t> lastPresent_;
};

}  // namespace fulcrum
