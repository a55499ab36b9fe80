// Small-matrix helpers shared by the gradient-combining strategies: the T×T
// Gram matrix of a T×P gradient matrix, and the combination Σ_i w_i g_i.
// The P-sized work stays on the gradients' device and dtype; only the T×T
// Gram matrix is copied to the host (in double) for the small solvers.
// Internal to strategies/.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <torch/types.h>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum::detail {

/// A T×T symmetric matrix on the host, row-major: at(i, j) = m[i * n + j].
struct Gram {
  int64_t n = 0;
  std::vector<double> m;
  double at(int64_t i, int64_t j) const { return m[static_cast<std::size_t>(i * n + j)]; }
  double& at(int64_t i, int64_t j) { return m[static_cast<std::size_t>(i * n + j)]; }
};

/// G Gᵀ for a T×P matrix `g` (rows g_i), computed in g's dtype on g's device,
/// returned as doubles. Throws std::invalid_argument naming `strategy` unless
/// `g` is a 2-D matrix of `taskCount` rows whose entries are all finite.
Gram gramOf(const torch::Tensor& g, int64_t taskCount, const std::string& strategy);

/// Σ_i w_i g_i: the length-P combination of the rows of `g` (on its device
/// and in its dtype).
torch::Tensor combineRows(const torch::Tensor& g, const std::vector<double>& w);

/// Which per-task gradients a gradient-combining strategy works on.
enum class GradientSpace {
  kParameters,      ///< ∂L_i/∂θ over the shared parameters (kSharedGradient)
  kRepresentation,  ///< ∂L_i/∂z over the shared representation (kRepresentationGradient)
};

/// Reads the option `gradients: parameters|representation` (default parameters).
GradientSpace readGradientSpace(const ConfigNode& options);

/// The GradientNeed and StepOutput kind of a space.
GradientNeed needOf(GradientSpace space);
StepOutput::Kind kindOf(GradientSpace space);

/// The T-row matrix of `space` from `source`.
const torch::Tensor& taskMatrix(GradientSource& source, GradientSpace space);

/// "<prefix><task>" for every task, for per-task diagnostic names.
std::vector<std::string> perTaskNames(const std::string& prefix, const std::vector<TaskSpec>& tasks);

/// The generator of one step of a run seeded `seed`: seeded from (seed,
/// step[, streamTag]) afresh each step, so a resumed run draws the same
/// sequence without checkpointing a generator; `streamTag` (if non-zero)
/// keeps one strategy's draws apart from another's.
std::mt19937_64 stepGenerator(uint64_t seed, int64_t step, uint32_t streamTag = 0);

/// The tasks 0..count-1 other than `task`, in an order drawn from `rng`.
std::vector<std::size_t> othersInRandomOrder(std::size_t task, std::size_t count, std::mt19937_64& rng);

}  // namespace fulcrum::detail
