// The two-task landscape of CAGrad (Liu et al., NeurIPS 2021), reused by
// Nash-MTL (Navon et al., ICML 2022) and FAMO (Liu et al., NeurIPS 2023):
// x ∈ R², no network, two analytic losses whose average has a wide flat
// valley and whose Pareto set is a curve between the tasks' minima. A
// strategy drives x through the same Strategy contract as in the trainer,
// with the exact per-task gradients as its gradient matrix.
//
//   f1 = log(max(|0.5(−x1−7) − tanh(−x2)|, 5e−6)) + 6
//   f2 = log(max(|0.5(−x1+3) + tanh(−x2) + 2|, 5e−6)) + 6
//   g1 = ((−x1+7)² + 0.1(−x2−8)²)/10 − 20,  g2 = ((−x1−7)² + 0.1(−x2−8)²)/10 − 20
//   c1 = max(tanh(x2/2), 0),  c2 = max(tanh(−x2/2), 0)
//   L1 = s1 (c1 f1 + c2 g1),  L2 = s2 (c1 f2 + c2 g2)
//
// with loss scales s (Nash-MTL and FAMO use s = (0.1, 1) to show scale
// robustness; CAGrad uses (1, 1)).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/experiment.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum {

/// A point of the plane.
using Point2 = std::array<double, 2>;

/// The losses and their exact gradients at one point.
struct LandscapeValue {
  Point2 loss{};                     ///< (L1, L2)
  std::array<Point2, 2> gradient{};  ///< gradient[i] = ∇L_i
};

/// L1, L2 and their gradients at `x` with loss scales `scales`. Where a
/// max(·) is at its floor the gradient of that term is 0 (as autograd's).
LandscapeValue evaluateLandscape(const Point2& x, const Point2& scales);

/// The `landscape:` block of a landscape experiment.
struct LandscapeSpec {
  /// `starts`: initial points; default the five published ones.
  std::vector<Point2> starts{{-8.5, 7.5}, {-8.5, 5.0}, {0.0, 0.0}, {9.0, 9.0}, {10.0, -8.0}};
  Point2 lossScales{1.0, 1.0};  ///< `loss_scales`, each > 0
  /// `loss_offsets`: the strategy sees L_i + o_i (gradients unchanged), so
  /// that log-based strategies (gls, stch, famo) and loss ratios (dwa,
  /// imtl_l) see positive losses; default o_i = 20 s_i (L_i > −20 s_i
  /// everywhere). The file stores L_i itself.
  Point2 lossOffsets{20.0, 20.0};
  int64_t steps = 35000;        ///< `steps`, ≥ 1 (Nash-MTL's toy runs 35 000)
  OptimizerSpec optimizer;      ///< `optimizer`: as train.optimizer; Adam 1e-3
  int64_t logEvery = 50;        ///< `log_every`: keep every k-th point, ≥ 1
  int64_t stepsPerEpoch = 100;  ///< `steps_per_epoch`: for epoch-based strategies (DWA)
  uint64_t seed = 0;            ///< `seed`, for strategies that sample
};

/// Reads and validates a `landscape:` mapping (unknown keys rejected).
LandscapeSpec readLandscapeSpec(const ConfigNode& node);

/// The two tasks of the landscape, named L1 and L2 (regression).
std::vector<TaskSpec> landscapeTasks();

/// One optimisation run from one start.
struct LandscapeRun {
  std::vector<int64_t> steps;        ///< the logged steps (0, k, 2k, ..., and the last)
  std::vector<Point2> points;        ///< x at those steps (before the step's update)
  std::vector<Point2> losses;        ///< (L1, L2) there
  std::vector<Point2> weights;       ///< the strategy's reported weights at that step
  std::string status = "completed";  ///< or "failed"
  std::string error;                 ///< why it failed (non-finite point, loss or weight)
};

/// Optimises x from `start` for spec.steps with `strategy` (freshly built,
/// not yet attached) and the spec's optimizer; strategy parameters (e.g.
/// learned log-variances) train with the same optimizer, without weight
/// decay. A non-finite loss, weight or point ends the run as "failed".
LandscapeRun runLandscape(Strategy& strategy, const LandscapeSpec& spec, const Point2& start);

}  // namespace fulcrum
