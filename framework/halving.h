// `sweep: {halving: ...}`: successive halving over a sweep's configurations
// (Jamieson & Talwalkar 2016; asynchronous: ASHA, Li et al. 2020). Every
// trial is a prefix of its full run: it trains to a rung's epoch, pauses
// (checkpoint kept), and only the best 1/η of the configurations continue,
// so a promoted trial's file equals an uninterrupted run's bit for bit.
//
//   sweep:
//     search: {method: sobol, trials: 16, space: {...}}
//     halving:
//       metric: fashion/accuracy   # validation criterion: TASK/METRIC or loss
//       mode: auto                 # auto (the metric's direction), min, max
//       min_epochs: 1              # the first rung
//       eta: 2                     # keep 1/eta per rung (default 3)
//       asynchronous: false        # true: ASHA (local launcher only)
//
// Rungs are min_epochs·eta^k below train.epochs, then train.epochs. A
// configuration is a sweep point: its trials over seeds (and
// cross-validation folds) are ranked by their mean value and promoted
// together. Pure logic: nothing here reads files or runs processes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "framework/schedule.h"

namespace fulcrum {

struct TrialSpec;

/// `sweep.halving`.
struct HalvingSpec {
  ValidationCriterion criterion;  ///< `metric:` and `mode:` (validation split)
  int64_t minEpochs = 1;          ///< the first rung
  int64_t eta = 3;                ///< the reduction factor (>= 2)
  bool asynchronous = false;      ///< ASHA instead of synchronous rungs
  std::vector<int64_t> rungs;     ///< epochs at which trials are ranked; the last is train.epochs
  std::string file;               ///< where `sweep.halving` is written
  int line = 0, column = 0;       ///< 1-based
};

/// The rungs: minEpochs·eta^k for every k with a value below `epochs`, then `epochs`.
std::vector<int64_t> halvingRungs(int64_t minEpochs, int64_t eta, int64_t epochs);

/// Reads `sweep.halving` of the experiment file `path`, if it has one,
/// against the planned `trials` (their tasks and train.epochs): ConfigError
/// at the key for an unknown metric, eta < 2, min_epochs >= train.epochs, or
/// trials of different train.epochs or tasks.
std::optional<HalvingSpec> readSweepHalving(const std::string& path,
                                            const std::vector<TrialSpec>& trials);

/// The configurations of a sweep: groups of trial indices whose swept values
/// agree except `seed` and `cross_validation`, in order of first appearance.
std::vector<std::vector<std::size_t>> configurationGroups(const std::vector<TrialSpec>& trials);

/// The positions of the best `count` of `values` in the criterion's
/// direction, best first: NaN ranks last, ties go to the lower position.
std::vector<std::size_t> bestOf(const std::vector<double>& values, std::size_t count,
                                bool higherIsBetter);

/// How many of a rung's `members` configurations synchronous halving
/// promotes: ⌊members/η⌋, at least 1 (so that one trains to the end).
std::size_t synchronousSurvivors(std::size_t members, int64_t eta);

/// ASHA's promotion from one rung (Li et al. 2020, Algorithm 2): among the
/// configurations that have completed the rung (`values`), the best of the
/// top ⌊n/η⌋ that is not `promoted` yet; none if there is no such one.
std::optional<std::size_t> ashaPromotion(const std::vector<double>& values,
                                         const std::vector<bool>& promoted, int64_t eta,
                                         bool higherIsBetter);

}  // namespace fulcrum
