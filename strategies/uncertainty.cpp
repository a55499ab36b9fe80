#include "strategies/uncertainty.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <stdexcept>

#include "strategies/support.h"

namespace fulcrum {

UncertaintyOptions readUncertaintyOptions(const ConfigNode& options,
                                          const std::vector<TaskSpec>& tasks) {
  (void)tasks;
  UncertaintyOptions out;
  // ±30 keeps exp(−s) finite in float32 with room for the optimiser to move.
  out.initLogVariance = options.getDouble("init_log_variance", out.initLogVariance, -30.0, 30.0);
  const std::string form = options.getString("form", "exact", {"exact", "regression"});
  out.form = form == "exact" ? UncertaintyForm::kExact : UncertaintyForm::kRegression;
  return out;
}

UncertaintyWeighting::UncertaintyWeighting(UncertaintyOptions options, std::vector<TaskSpec> tasks)
    : options_(options), tasks_(std::move(tasks)) {
  c_.reserve(tasks_.size());
  for (const auto& task : tasks_) {
    // Gaussian likelihood: ½σ⁻²‖y − f‖² + log σ; softmax with temperature σ²:
    // ≈ σ⁻² CE + log σ. With s = log σ², log σ = ½s in both.
    const bool regressionTerm =
        options_.form == UncertaintyForm::kRegression || taskKindInfo(task.kind).continuous;
    c_.push_back(regressionTerm ? 0.5 : 1.0);
  }
}

void UncertaintyWeighting::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "uncertainty");
  logVariance_ = torch::full({static_cast<int64_t>(tasks_.size())}, options_.initLogVariance,
                             torch::TensorOptions().device(context.device).dtype(context.dtype))
                     .requires_grad_(true);
}

void UncertaintyWeighting::requireAttached(const char* what) const {
  if (!logVariance_.defined()) {
    throw std::logic_error(fmt::format("uncertainty: {} called before attach()", what));
  }
}

std::vector<torch::Tensor> UncertaintyWeighting::parameters() {
  requireAttached("parameters()");
  return {logVariance_};
}

StepOutput UncertaintyWeighting::step(const StepInput& input) {
  requireAttached("step()");
  const torch::Tensor losses = detail::stackLosses(input.losses, tasks_.size(), "uncertainty");
  const torch::Tensor s = logVariance_.to(losses.scalar_type());
  const torch::Tensor weight = detail::constantLike(c_, losses) * torch::exp(-s);
  StepOutput out;
  out.kind = StepOutput::Kind::kObjective;
  torch::Tensor terms = weight * losses + 0.5 * s;
  if (!input.present.empty()) {
    std::vector<double> mask(tasks_.size());
    for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = input.present[i] ? 1.0 : 0.0;
    terms = terms * detail::constantLike(mask, losses);
  }
  out.objective = terms.sum();
  out.weights = weight.detach().to(torch::kFloat32);
  return out;
}

std::vector<double> UncertaintyWeighting::logVariances() const {
  requireAttached("logVariances()");
  return detail::toDoubles(logVariance_);
}

StrategyState UncertaintyWeighting::state() const {
  requireAttached("state()");
  return {{"log_variance", detail::stateVector(detail::toDoubles(logVariance_))}};
}

void UncertaintyWeighting::loadState(const StrategyState& state) {
  requireAttached("loadState()");
  const torch::Tensor& s = detail::requireState(state, "log_variance", 1, "uncertainty");
  if (s.size(0) != logVariance_.size(0)) {
    throw std::invalid_argument(fmt::format(
        "uncertainty: checkpoint 'log_variance' has {} entries, expected {} (one per task)",
        s.size(0), logVariance_.size(0)));
  }
  torch::NoGradGuard noGrad;
  logVariance_.copy_(s);
}

}  // namespace fulcrum
