// Helpers for the strategy tests: task lists, scalar losses, a gradient
// source that returns fixed matrices, and one-call stepping.
#pragma once

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"
#include "strategies/registry.h"

namespace fulcrum::testing {

/// Tasks named `names`, all of `kind`.
inline std::vector<TaskSpec> makeTasks(const std::vector<std::string>& names,
                                       TaskKind kind = TaskKind::kRegression) {
  std::vector<TaskSpec> tasks;
  for (const auto& name : names) tasks.push_back(TaskSpec{name, kind, 1});
  return tasks;
}

/// A context for `tasks` on the CPU in float64, so hand-derived values hold
/// to ~1e-12.
inline StrategyContext makeContext(const std::vector<TaskSpec>& tasks) {
  StrategyContext context;
  context.tasks = tasks;
  context.dtype = torch::kFloat64;
  return context;
}

/// Scalar float64 losses that require grad (leaves), so d objective / d L_i
/// can be read from their .grad().
inline std::vector<torch::Tensor> makeLosses(const std::vector<double>& values) {
  std::vector<torch::Tensor> losses;
  for (double v : values) {
    losses.push_back(torch::tensor(v, torch::kFloat64).requires_grad_(true));
  }
  return losses;
}

/// The options mapping of a strategy, as read from the `strategy:` section.
inline ConfigNode yamlNode(const std::string& text) {
  return ConfigNode(YAML::Load(text), "test.yaml", "strategy");
}

/// A GradientSource holding one fixed T × P matrix (rows = per-task
/// gradients) for every view (shared parameters, last shared layer,
/// representation); counts what was asked for.
class FixedGradients final : public GradientSource {
 public:
  /// No gradients (an empty matrix), for strategies that need the losses only.
  FixedGradients() : matrix_(torch::zeros({0, 0}, torch::kFloat64)) {}
  explicit FixedGradients(torch::Tensor matrix) : matrix_(std::move(matrix)) {}
  /// From rows of doubles.
  explicit FixedGradients(const std::vector<std::vector<double>>& rows) : matrix_(toMatrix(rows)) {}
  const torch::Tensor& sharedParameters() override {
    ++sharedCalls;
    return matrix_;
  }
  const torch::Tensor& lastSharedLayer() override {
    ++lastLayerCalls;
    return matrix_;
  }
  const torch::Tensor& representation() override {
    ++representationCalls;
    return matrix_;
  }
  /// Replaces the matrix (the counters keep counting).
  void set(const std::vector<std::vector<double>>& rows) { matrix_ = toMatrix(rows); }

  int sharedCalls = 0;
  int lastLayerCalls = 0;
  int representationCalls = 0;

 private:
  static torch::Tensor toMatrix(const std::vector<std::vector<double>>& rows) {
    std::vector<torch::Tensor> tensors;
    for (const auto& row : rows) tensors.push_back(torch::tensor(row, torch::kFloat64));
    return torch::stack(tensors);
  }
  torch::Tensor matrix_;
};

/// One step with the given loss values and gradient source.
inline StepOutput stepWith(Strategy& strategy, const std::vector<double>& lossValues,
                           GradientSource& gradients, int64_t step = 0, int64_t epoch = 0) {
  const std::vector<torch::Tensor> losses = makeLosses(lossValues);
  return strategy.step(StepInput{losses, gradients, step, epoch});
}

/// A step's weights as doubles.
inline std::vector<double> weightsOf(const StepOutput& out) {
  const torch::Tensor w = out.weights.to(torch::kFloat64).contiguous();
  return std::vector<double>(w.data_ptr<double>(), w.data_ptr<double>() + w.numel());
}

/// A step's combined direction as doubles.
inline std::vector<double> directionOf(const StepOutput& out) {
  const torch::Tensor d = out.direction.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

/// The strategy the YAML mapping `yaml` names, attached to `tasks` with
/// makeContext() and the given seed.
inline std::unique_ptr<Strategy> attached(const std::string& yaml, const std::vector<TaskSpec>& tasks,
                                          uint64_t seed = 0) {
  auto strategy = makeStrategy(yamlNode(yaml), tasks);
  StrategyContext context = makeContext(tasks);
  context.seed = seed;
  strategy->attach(context);
  return strategy;
}

}  // namespace fulcrum::testing
