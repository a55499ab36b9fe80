#include "strategies/imtl.h"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>
#include <torch/torch.h>

#include "strategies/support.h"

namespace fulcrum {

ImtlOptions readImtlOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  (void)tasks;
  ImtlOptions out;
  out.hybrid = options.getString("mode", "hybrid", {"gradient", "hybrid"}) == "hybrid";
  out.initScale = options.getDouble("init_scale", out.initScale, -30.0, 30.0);
  out.gradients = detail::readGradientSpace(options);
  return out;
}

std::vector<double> imtlGradientWeights(const detail::Gram& gram) {
  const int64_t n = gram.n;
  if (n == 1) return {1.0};
  std::vector<double> inverseNorm(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double norm = std::sqrt(std::max(gram.at(i, i), 0.0));
    // A zero gradient has no direction: its u_i is taken as 0.
    inverseNorm[static_cast<std::size_t>(i)] = norm > 0.0 ? 1.0 / norm : 0.0;
  }
  // gu(a, b) = g_a · u_b.
  auto gu = [&](int64_t a, int64_t b) { return gram.at(a, b) * inverseNorm[static_cast<std::size_t>(b)]; };
  const int64_t m = n - 1;
  torch::Tensor du = torch::empty({m, m}, torch::kFloat64);  // (D Uᵀ)_{ts}
  torch::Tensor gU = torch::empty({1, m}, torch::kFloat64);  // g_1 Uᵀ
  auto duA = du.accessor<double, 2>();
  auto gUA = gU.accessor<double, 2>();
  for (int64_t t = 1; t < n; ++t) {
    for (int64_t s = 1; s < n; ++s) {
      duA[t - 1][s - 1] = gu(0, 0) - gu(0, s) - gu(t, 0) + gu(t, s);
    }
    gUA[0][t - 1] = gu(0, 0) - gu(0, t);
  }
  const torch::Tensor tail = gU.mm(torch::linalg_pinv(du)).reshape({-1});
  std::vector<double> alpha(static_cast<std::size_t>(n));
  double sum = 0.0;
  for (int64_t t = 1; t < n; ++t) {
    alpha[static_cast<std::size_t>(t)] = tail[t - 1].item<double>();
    sum += alpha[static_cast<std::size_t>(t)];
  }
  alpha[0] = 1.0 - sum;
  return alpha;
}

Imtl::Imtl(ImtlOptions options, std::vector<TaskSpec> tasks)
    : options_(options), tasks_(std::move(tasks)) {}

void Imtl::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "imtl");
  attached_ = true;
  if (options_.hybrid) {
    scale_ = torch::full({static_cast<int64_t>(tasks_.size())}, options_.initScale,
                         torch::TensorOptions().device(context.device).dtype(context.dtype))
                 .requires_grad_(true);
  }
}

void Imtl::requireAttached(const char* what) const {
  if (!attached_) throw std::logic_error(fmt::format("imtl: {} called before attach()", what));
}

std::vector<torch::Tensor> Imtl::parameters() {
  requireAttached("parameters()");
  if (!options_.hybrid) return {};
  return {scale_};
}

std::vector<std::string> Imtl::diagnosticNames() const { return detail::perTaskNames("alpha_", tasks_); }

StepOutput Imtl::step(const StepInput& input) {
  requireAttached("step()");
  const std::size_t n = tasks_.size();
  const torch::Tensor losses = detail::stackLosses(input.losses, n, "imtl");
  const torch::Tensor& g = detail::taskMatrix(input.gradients, options_.gradients);
  detail::Gram gram = detail::gramOf(g, static_cast<int64_t>(n), "imtl");

  std::vector<double> lossScale(n, 1.0);  // e^{s_i}
  if (options_.hybrid) {
    lossScale = detail::toDoubles(scale_.detach().exp());
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) gram.m[i * n + j] *= lossScale[i] * lossScale[j];
    }
    // The trainer back-propagates no objective for a gradient update, so the
    // scales' own gradient, ∂/∂s_i (e^{s_i} L_i − s_i), is written here.
    const torch::Tensor l = losses.detach().to(scale_.scalar_type());
    scale_.mutable_grad() = scale_.detach().exp() * l - 1.0;
  }
  const std::vector<double> alpha = imtlGradientWeights(gram);
  std::vector<double> effective(n);
  for (std::size_t i = 0; i < n; ++i) effective[i] = alpha[i] * lossScale[i];

  StepOutput out;
  out.kind = detail::kindOf(options_.gradients);
  out.direction = detail::combineRows(g, effective);
  out.weights = detail::reportedWeights(lossScale, losses);
  out.diagnostics = alpha;
  return out;
}

StrategyState Imtl::state() const {
  requireAttached("state()");
  if (!options_.hybrid) return {};
  return {{"scale", detail::stateVector(detail::toDoubles(scale_))}};
}

void Imtl::loadState(const StrategyState& state) {
  requireAttached("loadState()");
  if (!options_.hybrid) return;
  const torch::Tensor& s = detail::requireState(state, "scale", 1, "imtl");
  if (s.size(0) != scale_.size(0)) {
    throw std::invalid_argument(fmt::format("imtl: checkpoint 'scale' has {} entries, expected {}",
                                            s.size(0), scale_.size(0)));
  }
  torch::NoGradGuard noGrad;
  scale_.copy_(s);
}

}  // namespace fulcrum
