#include "strategies/aligned_mtl.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>

#include "strategies/support.h"
#include "strategies/symmetric_eigen.h"

namespace fulcrum {

namespace {
// torch.finfo().eps of the default dtype (float32), which the official code,
// LibMTL and TorchJD use for the rank tolerance whatever the gradients' dtype.
constexpr double kFloat32Epsilon = 1.1920928955078125e-07;

void checkWeights(const std::vector<double>& weights, const std::vector<TaskSpec>& tasks,
                  const std::function<void(const std::string&)>& fail) {
  if (weights.size() != tasks.size()) {
    fail(fmt::format("expected {} weights (one per task: {}), got {}", tasks.size(),
                     detail::taskNames(tasks), weights.size()));
  }
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (!(weights[i] > 0.0) || !std::isfinite(weights[i])) {
      fail(fmt::format("weights[{}] (task {}) must be a finite number > 0, got {}", i,
                       tasks[i].name, weights[i]));
    }
  }
}
}  // namespace

AlignedMtlOptions readAlignedMtlOptions(const ConfigNode& options,
                                        const std::vector<TaskSpec>& tasks) {
  AlignedMtlOptions out;
  out.weights = options.getDoubleList("weights", std::vector<double>(tasks.size(), 1.0));
  checkWeights(out.weights, tasks,
               [&](const std::string& message) { options.fail("weights", message); });
  const std::string scale = options.getString("scale", "min", {"min", "median", "rmse"});
  out.scale = scale == "median" ? AlignedMtlScale::kMedian
              : scale == "rmse" ? AlignedMtlScale::kRmse
                                : AlignedMtlScale::kMin;
  out.gradients = detail::readGradientSpace(options);
  out.alphaOnHeads = options.getString("head_weights", "one", {"one", "alpha"}) == "alpha";
  return out;
}

AlignedMtlTransform alignedMtlTransform(const detail::Gram& gram, AlignedMtlScale scale) {
  const int64_t n = gram.n;
  const detail::SymmetricEigen eig = detail::symmetricEigen(gram);
  const double largest = eig.values.front();
  const double tolerance = largest * static_cast<double>(n) * kFloat32Epsilon;
  AlignedMtlTransform out;
  out.b.n = n;
  out.b.m.assign(static_cast<std::size_t>(n * n), 0.0);
  while (out.rank < n && eig.values[static_cast<std::size_t>(out.rank)] > tolerance) ++out.rank;
  if (out.rank == 0) {
    // All gradients are (numerically) zero: any B gives d = 0; the identity
    // keeps α = w, as TorchJD does.
    for (int64_t i = 0; i < n; ++i) out.b.at(i, i) = 1.0;
    return out;
  }
  const auto kept = static_cast<std::size_t>(out.rank);
  std::vector<double> values(eig.values.begin(),
                             eig.values.begin() + static_cast<std::ptrdiff_t>(kept));
  double squared = values.back();  // σ²
  if (scale == AlignedMtlScale::kMedian) {
    // torch.median: the lower of the two middle values; `values` is descending.
    squared = values[kept / 2];
  } else if (scale == AlignedMtlScale::kRmse) {
    squared = 0.0;
    for (double v : values) squared += v;
    squared /= static_cast<double>(kept);
  }
  out.sigma = std::sqrt(squared);
  for (int64_t k = 0; k < out.rank; ++k) {
    const double factor = out.sigma / std::sqrt(values[static_cast<std::size_t>(k)]);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j)
        out.b.at(i, j) += factor * eig.vector(i, k) * eig.vector(j, k);
    }
  }
  return out;
}

AlignedMtl::AlignedMtl(AlignedMtlOptions options, std::vector<TaskSpec> tasks)
    : options_(std::move(options)), tasks_(std::move(tasks)) {
  if (options_.weights.empty()) options_.weights.assign(tasks_.size(), 1.0);
  checkWeights(options_.weights, tasks_, [](const std::string& message) {
    throw std::invalid_argument("aligned_mtl: " + message);
  });
}

void AlignedMtl::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "aligned_mtl");
}

std::vector<std::string> AlignedMtl::diagnosticNames() const {
  std::vector<std::string> names{"rank", "sigma"};
  for (auto& name : detail::perTaskNames("alpha_", tasks_)) names.push_back(name);
  return names;
}

StepOutput AlignedMtl::step(const StepInput& input) {
  const std::size_t n = tasks_.size();
  const torch::Tensor losses = detail::stackLosses(input.losses, n, "aligned_mtl");
  const torch::Tensor& g = detail::taskMatrix(input.gradients, options_.gradients);
  const detail::Gram gram = detail::gramOf(g, static_cast<int64_t>(n), "aligned_mtl");
  const AlignedMtlTransform transform = alignedMtlTransform(gram, options_.scale);

  std::vector<double> alpha(n, 0.0);  // α = B w (B is symmetric)
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) alpha[i] += transform.b.m[i * n + j] * options_.weights[j];
  }

  StepOutput out;
  out.kind = detail::kindOf(options_.gradients);
  out.direction = detail::combineRows(g, alpha);
  out.weights =
      detail::reportedWeights(options_.alphaOnHeads ? alpha : std::vector<double>(n, 1.0), losses);
  out.diagnostics.push_back(static_cast<double>(transform.rank));
  out.diagnostics.push_back(transform.sigma);
  for (double a : alpha) out.diagnostics.push_back(a);
  return out;
}

}  // namespace fulcrum
