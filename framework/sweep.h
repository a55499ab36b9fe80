// Sweeps: an experiment file's `sweep:`, `zip:` and `seeds:` blocks (plus
// command-line `--sweep` axes) expanded into a list of trials, each a set of
// overrides of the base configuration with a stable id. Pure configuration:
// nothing here trains, runs processes or reads result files.
//
//   sweep:                                # grid: the Cartesian product of the axes
//     train.optimizer.lr: [1e-3, 1e-2]    # key path: list of values
//     train.batch_size: {values: [64, 128]}   # W&B style, the same thing
//     strategy: [{name: gradnorm, alpha: 0.5}, {name: dwa}]   # whole mappings
//   zip:                                  # each group is one axis whose keys vary together
//     - {data.train_size: [1000, 2000], train.epochs: [4, 2]}
//     - [model.head.kind, train.threads]  # or names of `sweep:` axes of equal length
//   seeds: [0, 1, 2]                      # every point repeated per seed (sets `seed`)
//
// Inside `sweep:`, `search:` samples points (framework/search.h), `halving:`
// says how the trials run (framework/halving.h), and `cross_validation: k`
// (or `{folds: k, seed: s}`) is an axis over the k folds:
// `cross_validation: {folds: k, fold: f}` per trial.
//
// Axes are expanded in file order, the first axis outermost, seeds innermost;
// `--sweep` axes replace the file's axis of the same key or are appended.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "framework/config_node.h"
#include "framework/experiment.h"

namespace fulcrum {

/// The top-level keys of an experiment file that describe a sweep; parseExperiment
/// ignores them, so `fulcrum run` trains the base configuration.
inline const std::vector<std::string> kSweepKeys = {"sweep", "zip", "seeds"};

/// One trial of a sweep.
struct TrialSpec {
  std::size_t index = 0;  ///< position in the sweep, 0-based
  std::string id;         ///< 12 hex digits: hash of the canonical resolved config
  /// Overrides that turn the base file into this trial: the command's `--set`
  /// overrides, then the point's values, then `seed=` (when `seeds:` is given).
  std::vector<std::string> overrides;
  /// The swept key paths and their values (flow YAML), for tables.
  std::vector<std::pair<std::string, std::string>> values;
  ExperimentSpec spec;     ///< the trial's validated configuration
  std::string resultPath;  ///< <output>/<name>-<strategy>-seed<seed>-<id>.h5

  /// Rethrows `error` (raised while validating this trial) located where the
  /// offending value was written: the sweep value in the file, the `--sweep`
  /// or the `--set` argument, or unchanged when it lies in the base file.
  [[noreturn]] void rethrow(const ConfigError& error) const;

  /// Where each point override came from ("FILE:LINE:COL" origin or "--sweep …").
  struct Origin {
    std::string override;      ///< the override text, "key=value"
    std::string keyPath;       ///< its key path
    std::string file;          ///< file (or "--sweep TEXT")
    int line = 0, column = 0;  ///< 1-based; 0 for the command line
  };
  std::vector<Origin> origins;  ///< one per override, base `--set`s included
};

/// Options of planSweep.
struct SweepOptions {
  std::vector<std::string> sets;    ///< `--set key.path=value` applied to the base
  std::vector<std::string> sweeps;  ///< `--sweep key.path=v1,v2` axes (values as YAML)
};

/// Expands the sweep of the experiment file `path` and validates every trial
/// with parseExperiment (strategies are validated by the caller, see
/// TrialSpec::rethrow). Throws ConfigError naming file, line, column and key
/// path: an axis that is not a list or is empty, zip groups of unequal
/// lengths, a bad seed, a trial whose configuration is invalid, or two
/// trials with the same configuration. Without any axis or seeds the sweep
/// is the one base trial.
std::vector<TrialSpec> planSweep(const std::string& path, const SweepOptions& options = {});
/// As planSweep, from YAML text; `file` names it in messages.
std::vector<TrialSpec> planSweepText(const std::string& text, const std::string& file,
                                     const SweepOptions& options = {});

/// The canonical text of a configuration tree: mapping keys sorted
/// recursively, numbers normalised (1e-3 and 0.001 read the same), and
/// `train.threads`, `train.checkpoint_every` and `output` left out (they
/// change speed and place, not the experiment).
std::string canonicalConfig(const YAML::Node& root);

/// 64-bit FNV-1a of `text`.
uint64_t fnv1a64(const std::string& text);

/// The trial id of a configuration tree: the first 12 hex digits of
/// fnv1a64(canonicalConfig(root)).
std::string trialId(const YAML::Node& root);

/// Splits a `--sweep` value list at top-level commas ("1e-3,{name: a, x: 1}"
/// gives two items); commas inside brackets, braces or quotes are kept.
std::vector<std::string> splitSweepValues(const std::string& text);

}  // namespace fulcrum
