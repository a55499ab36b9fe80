#include "framework/update.h"

#include <torch/torch.h>

namespace fulcrum {

namespace {

void setGradient(const torch::Tensor& parameter, const torch::Tensor& value) {
  torch::Tensor& grad = const_cast<torch::Tensor&>(parameter).mutable_grad();
  if (grad.defined())
    grad.copy_(value);
  else
    grad = value.detach().to(parameter.options(), /*non_blocking=*/false, /*copy=*/true);
}

/// Gives each task-specific parameter the gradient of Σ w_i L_i (its own
/// task's weighted loss).
void backwardTaskSpecific(const std::vector<torch::Tensor>& parameters,
                          const std::vector<torch::Tensor>& losses, const torch::Tensor& weights) {
  if (parameters.empty()) return;
  torch::Tensor weighted = (weights.detach() * torch::stack(losses)).sum();
  auto grads = torch::autograd::grad({weighted}, parameters, {}, /*retain_graph=*/true,
                                     /*create_graph=*/false, /*allow_unused=*/true);
  for (std::size_t k = 0; k < parameters.size(); ++k) {
    if (grads[k].defined()) setGradient(parameters[k], grads[k]);
  }
}

}  // namespace

void addGradients(const std::vector<torch::Tensor>& parameters,
                  const std::vector<torch::Tensor>& gradients) {
  torch::NoGradGuard noGrad;
  for (std::size_t k = 0; k < parameters.size(); ++k) {
    if (!gradients[k].defined()) continue;
    torch::Tensor& grad = const_cast<torch::Tensor&>(parameters[k]).mutable_grad();
    if (grad.defined())
      grad.add_(gradients[k]);
    else
      grad = gradients[k].detach().clone();
  }
}

void assignGradients(const std::vector<torch::Tensor>& parameters, const torch::Tensor& flat) {
  int64_t offset = 0;
  for (const auto& parameter : parameters) {
    const int64_t n = parameter.numel();
    setGradient(parameter, flat.narrow(0, offset, n).view_as(parameter));
    offset += n;
  }
}

void applyUpdate(const StepOutput& update, const UpdateTargets& targets) {
  switch (update.kind) {
    case StepOutput::Kind::kObjective:
      update.objective.backward();
      return;
    case StepOutput::Kind::kSharedGradient:
      backwardTaskSpecific(targets.taskSpecific, targets.losses, update.weights);
      assignGradients(targets.shared, update.direction);
      return;
    case StepOutput::Kind::kRepresentationGradient: {
      TORCH_CHECK(!targets.features.empty(),
                  "a representation gradient needs the model's features");
      backwardTaskSpecific(targets.taskSpecific, targets.losses, update.weights);
      std::vector<torch::Tensor> grads;
      int64_t offset = 0;
      for (const auto& feature : targets.features) {
        grads.push_back(update.direction.narrow(0, offset, feature.numel())
                            .to(feature.dtype())
                            .view_as(feature));
        offset += feature.numel();
      }
      TORCH_CHECK(offset == update.direction.numel(), "a representation gradient of ",
                  update.direction.numel(), " values for features of ", offset);
      // Into the shared parameters only: a task's own parameter upstream of
      // a feature (PLE's task gates below the last level) has its gradient already.
      if (targets.shared.empty()) return;
      const auto shared =
          torch::autograd::grad(targets.features, targets.shared, grads, /*retain_graph=*/true,
                                /*create_graph=*/false, /*allow_unused=*/true);
      for (std::size_t k = 0; k < shared.size(); ++k) {
        if (shared[k].defined()) setGradient(targets.shared[k], shared[k]);
      }
      return;
    }
  }
}

}  // namespace fulcrum
