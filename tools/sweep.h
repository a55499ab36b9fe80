// `fulcrum sweep` and `fulcrum run-trial`: a sweep (framework/sweep.h) run
// on the local machine, each trial a child process `fulcrum run-trial`, so a
// crash or a NaN in one trial cannot take the others down. State lives in the
// result files only: a rerun skips completed trials, reruns running,
// interrupted or unreadable ones, and failed ones with --retry-failed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fulcrum {

/// Exit code of `run-trial` when another process holds the trial's lock.
inline constexpr int kExitRunningElsewhere = 3;

/// Options of `fulcrum sweep`.
struct SweepCommandOptions {
  std::string experiment;           ///< the YAML file with its sweep block
  std::vector<std::string> sets;    ///< --set key.path=value, applied to the base
  std::vector<std::string> sweeps;  ///< --sweep key.path=v1,v2: adds or replaces an axis
  bool dryRun = false;              ///< --dry-run: print the trial table and count only
  int jobs = 0;                     ///< --jobs: trials at once; 0 = the number of cores
  bool retryFailed = false;         ///< --retry-failed: rerun trials whose file says failed
  /// --no-halving: train every trial to the end even if the sweep has
  /// `halving:` (the full grid; paused trials continue from their rung).
  bool noHalving = false;
};

/// Options of `fulcrum run-trial`.
struct RunTrialOptions {
  std::string experiment;
  std::vector<std::string> sets;
  std::vector<std::string> sweeps;
  std::size_t index = 0;  ///< --index: which trial of the plan, 0-based
  int threads = 0;        ///< --threads: train.threads for the trial; 0 = the file's
  bool log = false;       ///< --log: once locked, write all output to <result>.log
  /// --pause-after E: stop after epoch E, status "paused" (successive
  /// halving's rungs); 0, or E >= train.epochs: train to the end.
  int64_t pauseAfter = 0;
};

struct TrialSpec;

/// Plans the sweep of `file` with the given --set and --sweep arguments and
/// validates every trial, strategy options included; throws ConfigError.
std::vector<TrialSpec> planAndValidateSweep(const std::string& file,
                                            const std::vector<std::string>& sets,
                                            const std::vector<std::string>& sweeps);

/// Absolute path of the running fulcrum executable; throws std::runtime_error.
std::string fulcrumExecutable();

/// Plans and validates the sweep, then runs (or with dryRun lists) its
/// trials. Exit code: 0 every trial completed; 1 some trial failed, crashed,
/// was interrupted or runs elsewhere (each listed with its reason); 2 bad
/// input; 128+signal when stopped by SIGINT/SIGTERM.
int sweepCommand(const SweepCommandOptions& options);

/// Re-plans the sweep and runs trial `index` under its lock file
/// (<result>.lock, held for the whole trial). Exit code: 0 completed (or
/// already completed: the file is left untouched); 1 the trial failed or was
/// interrupted; 2 bad input; kExitRunningElsewhere if another process holds
/// the lock.
int runTrialCommand(const RunTrialOptions& options);

}  // namespace fulcrum
