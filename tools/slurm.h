// `fulcrum sweep --launcher slurm` and `fulcrum status`. A sweep on Slurm is
// one job array whose task I runs `fulcrum run-trial FILE --index I`, the
// child command of the local runner, so ids, files, locks and resume rules
// are the same. State is read back from the result files and their lock
// files only, never from Slurm's accounting (sacct), which a cluster without
// slurmdbd lacks.
#pragma once

#include <string>
#include <vector>

#include "tools/sweep.h"

namespace fulcrum {

/// Options of `fulcrum sweep --launcher slurm`.
struct SlurmOptions {
  std::string partition;  ///< --partition; "" = the cluster's default partition
  std::string time;       ///< --time, Slurm's syntax ("30", "1:00:00"); "" = the partition's limit
  int arrayParallelism = 0;  ///< --array-parallelism K (`--array=...%K`); 0 = no limit
  int cpusPerTask = 1;       ///< --cpus-per-task C (>= 1), also the trial's train.threads
  bool gather = false;       ///< --gather: an afterany job runs `fulcrum summary` over the files
  /// --halving-advance (hidden): the submission is the afterany job of a
  /// halving rung's array; it submits the next rung, never a rung's
  /// unfinished trials again.
  bool advance = false;
};

/// Plans the sweep as `fulcrum sweep` does, writes
/// `<output>/slurm/sweep-<UTC timestamp>.sbatch` for a job array over the
/// trials that are not completed (nor failed, unless retryFailed; nor held
/// by a running process), submits it with `sbatch --parsable`, prints the
/// job id and returns without waiting. With `dryRun` prints the script and
/// submits nothing. Exit code: 0 submitted (or nothing left to submit and
/// every trial completed); 1 nothing submitted but some trial failed (kept)
/// or runs elsewhere; 2 bad input, or sbatch missing or failing (its stderr
/// is printed). With `sweep.halving` (synchronous only) it submits the
/// current rung's array (run-trial --pause-after the rung's epoch) and an
/// afterany job that runs this command again with --halving-advance: it
/// records the rung's promotions and submits the next rung, until the last.
int slurmSweepCommand(const SweepCommandOptions& sweep, const SlurmOptions& slurm);

/// Options of `fulcrum status`.
struct StatusOptions {
  std::string target;               ///< a folder of trial files, or an experiment YAML file
  std::vector<std::string> sets;    ///< with a YAML file: --set, as for sweep
  std::vector<std::string> sweeps;  ///< with a YAML file: --sweep, as for sweep
};

/// Prints each trial's state read from its files: completed, failed (with
/// the error), interrupted, running (its lock is held by a live process),
/// stale (the file says running but nobody holds its lock: the writer
/// crashed or was killed), damaged (shown damaged: a rerun redoes it),
/// unreadable (cannot be read for another reason: a rerun leaves it alone),
/// foreign (holds another configuration or seed than the trial it is named
/// after: the plan's trial for a YAML file, the "-seed<S>-<id>" of a sweep
/// file's name in a folder) and, for a YAML file's planned trials, not
/// started; then the counts. Exit code: 0 every trial
/// completed; 1 otherwise; 2 bad input.
int statusCommand(const StatusOptions& options);

}  // namespace fulcrum
