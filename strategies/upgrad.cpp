#include "strategies/upgrad.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>

#include "strategies/box_qp.h"
#include "strategies/support.h"

namespace fulcrum {

namespace {
void checkPreferences(const std::vector<double>& pref, const std::vector<TaskSpec>& tasks,
                      const std::function<void(const std::string&)>& fail) {
  if (pref.size() != tasks.size()) {
    fail(fmt::format("expected {} preference weights (one per task: {}), got {}", tasks.size(),
                     detail::taskNames(tasks), pref.size()));
  }
  double sum = 0.0;
  for (std::size_t i = 0; i < pref.size(); ++i) {
    if (!(pref[i] >= 0.0) || !std::isfinite(pref[i])) {
      fail(fmt::format("pref_weights[{}] (task {}) must be a finite number >= 0, got {}", i,
                       tasks[i].name, pref[i]));
    }
    sum += pref[i];
  }
  if (!(sum > 0.0)) fail("at least one preference weight must be > 0");
}
}  // namespace

UpGradOptions readUpGradOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  UpGradOptions out;
  out.prefWeights = options.getDoubleList(
      "pref_weights", std::vector<double>(tasks.size(), 1.0 / static_cast<double>(tasks.size())));
  checkPreferences(out.prefWeights, tasks,
                   [&](const std::string& message) { options.fail("pref_weights", message); });
  out.normEps = options.getDouble("norm_eps", out.normEps, 0.0, 1e300);
  out.regEps = options.getDouble("reg_eps", out.regEps, 0.0, 1e300);
  out.gradients = detail::readGradientSpace(options);
  out.lambdaOnHeads = options.getString("head_weights", "one", {"one", "lambda"}) == "lambda";
  out.maxIterations = options.getInt("max_iterations", out.maxIterations, 1, 1000000);
  return out;
}

std::vector<double> upgradWeights(const detail::Gram& gram, const std::vector<double>& pref,
                                  double normEps, double regEps, int64_t maxIterations,
                                  int64_t* iterations) {
  const int64_t n = gram.n;
  detail::Gram m = gram;
  double trace = 0.0;
  for (int64_t i = 0; i < n; ++i) trace += gram.at(i, i);
  for (double& x : m.m) x = trace >= normEps && trace > 0.0 ? x / trace : 0.0;
  for (int64_t i = 0; i < n; ++i) m.at(i, i) += regEps;

  std::vector<double> lambda(static_cast<std::size_t>(n), 0.0);
  int64_t most = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double p = pref[static_cast<std::size_t>(i)];
    if (p == 0.0) continue;  // the bound 0 has the solution 0
    std::vector<double> bound(static_cast<std::size_t>(n), 0.0);
    bound[static_cast<std::size_t>(i)] = p;
    const detail::BoxQpSolution solution = detail::solveLowerBoundedQp(m, bound, maxIterations);
    most = std::max(most, solution.iterations);
    for (int64_t j = 0; j < n; ++j) {
      lambda[static_cast<std::size_t>(j)] += solution.lambda[static_cast<std::size_t>(j)];
    }
  }
  if (iterations != nullptr) *iterations = most;
  return lambda;
}

UpGrad::UpGrad(UpGradOptions options, std::vector<TaskSpec> tasks)
    : options_(std::move(options)), tasks_(std::move(tasks)) {
  if (options_.prefWeights.empty()) {
    options_.prefWeights.assign(tasks_.size(), 1.0 / static_cast<double>(tasks_.size()));
  }
  checkPreferences(options_.prefWeights, tasks_, [](const std::string& message) {
    throw std::invalid_argument("upgrad: " + message);
  });
}

void UpGrad::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "upgrad");
}

std::vector<std::string> UpGrad::diagnosticNames() const {
  std::vector<std::string> names{"iterations"};
  for (auto& name : detail::perTaskNames("lambda_", tasks_)) names.push_back(name);
  return names;
}

StepOutput UpGrad::step(const StepInput& input) {
  const std::size_t n = tasks_.size();
  const torch::Tensor losses = detail::stackLosses(input.losses, n, "upgrad");
  const torch::Tensor& g = detail::taskMatrix(input.gradients, options_.gradients);
  const detail::Gram gram = detail::gramOf(g, static_cast<int64_t>(n), "upgrad");
  int64_t iterations = 0;
  const std::vector<double> lambda =
      upgradWeights(gram, options_.prefWeights, options_.normEps, options_.regEps,
                    options_.maxIterations, &iterations);
  StepOutput out;
  out.kind = detail::kindOf(options_.gradients);
  out.direction = detail::combineRows(g, lambda);
  out.weights = detail::reportedWeights(
      options_.lambdaOnHeads ? lambda : std::vector<double>(n, 1.0), losses);
  out.diagnostics.push_back(static_cast<double>(iterations));
  for (double l : lambda) out.diagnostics.push_back(l);
  return out;
}

}  // namespace fulcrum
