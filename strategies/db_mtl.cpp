#include "strategies/db_mtl.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "strategies/gram.h"
#include "strategies/support.h"

namespace fulcrum {

namespace {
constexpr double kEpsilon = 1e-8;  // inside the logarithm, as LibMTL's log(losses + 1e-8)
}  // namespace

DbMtlOptions readDbMtlOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  (void)tasks;
  DbMtlOptions out;
  out.beta = options.getDouble("beta", out.beta, 0.0, 1.0);
  if (!(out.beta < 1.0)) options.fail("beta", fmt::format("must be < 1, got {}", out.beta));
  out.betaSigma = options.getDouble("beta_sigma", out.betaSigma, 0.0, 1e6);
  return out;
}

DbMtl::DbMtl(DbMtlOptions options, std::vector<TaskSpec> tasks)
    : options_(options), tasks_(std::move(tasks)) {
  if (!(options_.beta >= 0.0 && options_.beta < 1.0)) {
    throw std::invalid_argument(
        fmt::format("db_mtl: beta must be in [0, 1), got {}", options_.beta));
  }
  if (!(options_.betaSigma >= 0.0) || !std::isfinite(options_.betaSigma)) {
    throw std::invalid_argument(
        fmt::format("db_mtl: beta_sigma must be a finite number >= 0, got {}", options_.betaSigma));
  }
}

void DbMtl::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "db_mtl");
  attached_ = true;
  ema_ = torch::Tensor();
  steps_ = 0;
}

void DbMtl::requireAttached(const char* what) const {
  if (!attached_) throw std::logic_error(fmt::format("db_mtl: {} called before attach()", what));
}

std::vector<std::string> DbMtl::diagnosticNames() const {
  std::vector<std::string> names = detail::perTaskNames("norm_", tasks_);
  for (auto& name : detail::perTaskNames("scale_", tasks_)) names.push_back(name);
  return names;
}

StepOutput DbMtl::step(const StepInput& input) {
  requireAttached("step()");
  const std::size_t n = tasks_.size();
  const torch::Tensor losses = detail::stackLosses(input.losses, n, "db_mtl");
  const torch::Tensor& g = input.gradients.sharedParameters();
  if (!g.defined() || g.dim() != 2 || g.size(0) != static_cast<int64_t>(n)) {
    throw std::invalid_argument(fmt::format(
        "db_mtl: expected a gradient matrix with {} rows, got {}", n,
        g.defined() ? fmt::format("shape [{}]", fmt::join(g.sizes().vec(), ", ")) : "none"));
  }
  if (ema_.defined() && ema_.size(1) != g.size(1)) {
    throw std::invalid_argument(fmt::format(
        "db_mtl: the gradients have {} entries per task but the EMA (from a checkpoint?) has {}",
        g.size(1), ema_.size(1)));
  }
  const std::vector<double> values = detail::toDoubles(losses);
  std::vector<double> inverse(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (!(values[i] + kEpsilon > 0.0) || !std::isfinite(values[i])) {
      throw std::invalid_argument(
          fmt::format("db_mtl: the logarithm needs losses > -1e-8; task '{}' has loss {}",
                      tasks_[i].name, values[i]));
    }
    inverse[i] = 1.0 / (values[i] + kEpsilon);
  }

  torch::NoGradGuard noGrad;
  // ∂log(L_i + ε)/∂θ = g_i / (L_i + ε): a new tensor, never the source's storage.
  const torch::Tensor logGradients = g.detach() * detail::constantLike(inverse, g).unsqueeze(1);
  ++steps_;
  const double betaT = options_.beta / std::pow(static_cast<double>(steps_), options_.betaSigma);
  if (!ema_.defined()) {
    ema_ = torch::zeros_like(logGradients);
  } else if (ema_.device() != g.device() || ema_.scalar_type() != g.scalar_type()) {
    ema_ = ema_.to(g.device(), g.scalar_type());  // restored from a float64 CPU checkpoint
  }
  ema_.mul_(betaT).add_(logGradients, 1.0 - betaT);

  const std::vector<double> norms = detail::toDoubles(ema_.norm(2, {1}));
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(norms[i])) {
      throw std::invalid_argument(fmt::format(
          "db_mtl: the gradient of task '{}' contains NaN or infinite values", tasks_[i].name));
    }
  }
  const double largest = *std::max_element(norms.begin(), norms.end());
  std::vector<double> scale(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) scale[i] = norms[i] > 0.0 ? largest / norms[i] : 0.0;

  StepOutput out;
  out.kind = StepOutput::Kind::kSharedGradient;
  out.direction = detail::combineRows(ema_, scale);
  out.weights = detail::reportedWeights(inverse, losses);
  out.diagnostics = norms;
  out.diagnostics.insert(out.diagnostics.end(), scale.begin(), scale.end());
  return out;
}

StrategyState DbMtl::state() const {
  requireAttached("state()");
  const torch::Tensor ema =
      ema_.defined() ? ema_.detach().to(torch::kCPU, torch::kFloat64).clone()
                     : torch::zeros({static_cast<int64_t>(tasks_.size()), 0}, torch::kFloat64);
  return {{"ema", ema}, {"steps", torch::tensor(steps_)}};
}

void DbMtl::loadState(const StrategyState& state) {
  requireAttached("loadState()");
  const torch::Tensor& ema = detail::requireState(state, "ema", 2, "db_mtl");
  if (ema.size(0) != static_cast<int64_t>(tasks_.size())) {
    throw std::invalid_argument(fmt::format("db_mtl: checkpoint 'ema' has {} rows, expected {}",
                                            ema.size(0), tasks_.size()));
  }
  const int64_t steps = detail::requireState(state, "steps", 0, "db_mtl").item<int64_t>();
  if (steps < 0) throw std::invalid_argument("db_mtl: checkpoint 'steps' is negative");
  steps_ = steps;
  // The device and dtype follow the gradients at the next step.
  ema_ = ema.size(1) == 0 ? torch::Tensor() : ema.detach().clone();
}

}  // namespace fulcrum
