// `fulcrum probe`: one strategy on given per-task gradient matrices, printed
// as JSON — how a researcher inspects what a method does with a gradient
// configuration, and how the CLI tests feed hand-derived cases.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace fulcrum {

/// Options of `fulcrum probe`.
struct ProbeOptions {
  std::string strategy;           ///< a name from the strategy table
  std::string grads;              ///< --grads: CSV, T rows of P numbers per step, steps separated by a blank line
  std::string losses;             ///< --losses: CSV, one line of T losses per step; default 1 each
  std::vector<std::string> sets;  ///< --set opt=value: the strategy's options, values as YAML
  int64_t steps = 1;              ///< --steps K: the number of matrices in --grads (≥ 1)
  uint64_t seed = 0;              ///< --seed: StrategyContext::seed
};

/// Runs the probe: attaches the strategy to T generic regression tasks and P
/// shared parameters (CPU, float64, one step per epoch), feeds step k's matrix
/// through a FixedGradientSource (also serving as the representation and
/// last-layer gradients) with its losses, and writes one JSON line per step to
/// `out`: {"step":k,"kind":…,"direction":[…],"weights":[…],"diagnostics":{…}}.
/// For a loss-weighting strategy the direction is Σ_i (∂objective/∂L_i) g_i.
/// State carries from step to step (onEpochEnd is called after each step with
/// its losses); learnable strategy parameters are not trained.
/// Returns 0, or 2 after writing a message to `err` for bad input (malformed
/// CSV with its line and column, NaN, wrong number of losses, unknown
/// strategy or option, an input the strategy rejects).
int probeCommand(const ProbeOptions& options, std::ostream& out, std::ostream& err);

}  // namespace fulcrum
