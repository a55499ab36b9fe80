#include "strategies/imtl_l.h"

#include <stdexcept>

#include <fmt/format.h>
#include <torch/torch.h>

#include "strategies/support.h"

namespace fulcrum {

ImtlLOptions readImtlLOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  (void)tasks;
  ImtlLOptions out;
  out.initScale = options.getDouble("init_scale", out.initScale, -30.0, 30.0);
  return out;
}

ImtlL::ImtlL(ImtlLOptions options, std::vector<TaskSpec> tasks)
    : options_(options), tasks_(std::move(tasks)) {}

void ImtlL::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "imtl_l");
  scale_ = torch::full({static_cast<int64_t>(tasks_.size())}, options_.initScale,
                       torch::TensorOptions().device(context.device).dtype(context.dtype))
               .requires_grad_(true);
}

void ImtlL::requireAttached(const char* what) const {
  if (!scale_.defined()) throw std::logic_error(fmt::format("imtl_l: {} called before attach()", what));
}

std::vector<torch::Tensor> ImtlL::parameters() {
  requireAttached("parameters()");
  return {scale_};
}

StepOutput ImtlL::step(const StepInput& input) {
  requireAttached("step()");
  const torch::Tensor losses = detail::stackLosses(input.losses, tasks_.size(), "imtl_l");
  const torch::Tensor s = scale_.to(losses.dtype());
  StepOutput out;
  out.kind = StepOutput::Kind::kObjective;
  torch::Tensor terms = s.exp() * losses - s;
  if (!input.present.empty()) {
    std::vector<double> mask(tasks_.size());
    for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = input.present[i] ? 1.0 : 0.0;
    terms = terms * detail::constantLike(mask, losses);
  }
  out.objective = terms.sum();
  out.weights = s.detach().exp().to(torch::kFloat32);
  return out;
}

StrategyState ImtlL::state() const {
  requireAttached("state()");
  return {{"scale", detail::stateVector(detail::toDoubles(scale_))}};
}

void ImtlL::loadState(const StrategyState& state) {
  requireAttached("loadState()");
  const torch::Tensor& s = detail::requireState(state, "scale", 1, "imtl_l");
  if (s.size(0) != scale_.size(0)) {
    throw std::invalid_argument(fmt::format("imtl_l: checkpoint 'scale' has {} entries, expected {}",
                                            s.size(0), scale_.size(0)));
  }
  torch::NoGradGuard noGrad;
  scale_.copy_(s);
}

}  // namespace fulcrum
