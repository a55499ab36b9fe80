// Successive halving and ASHA (framework/halving.h) run by `fulcrum sweep`:
// the local runner asks next() whenever it has a free slot, Slurm submits
// one array per rung (slurmStep). What each trial has done is read from its
// result file; the promotions are recorded in
// `<output>/<name>-halving-<hash>.yaml` as they are decided, so that a
// rerun (or Slurm's next rung) continues from them and never decides a rung
// twice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "framework/halving.h"
#include "tools/trial_lock.h"

namespace fulcrum {

struct TrialSpec;

/// One run of one trial: to the end, or paused after `pauseAfter` epochs.
struct SweepJob {
  std::size_t trial = 0;
  int64_t pauseAfter = 0;  ///< 0: train to the end
};

class HalvingRun {
 public:
  /// `trials` is the sweep's plan; `retryFailed` reruns failed trials of a
  /// rung instead of ranking them last. Throws std::runtime_error if the
  /// record cannot be read.
  HalvingRun(const std::vector<TrialSpec>& trials, HalvingSpec spec, bool retryFailed);

  const HalvingSpec& spec() const { return spec_; }
  /// `<output of trial 0>/<name>-halving-<hash of the trial ids and the spec>.yaml`.
  const std::string& recordPath() const { return recordPath_; }

  /// The local runner's next jobs with `running` jobs in flight: the next
  /// rung's (synchronous, once the rung before is done and decided) or the
  /// next configuration ASHA promotes or starts; empty: none now. A trial's
  /// job at a rung is handed out once per HalvingRun.
  std::vector<SweepJob> next(std::size_t running);
  /// A job of `trial` ended (its file is read again).
  void ended(std::size_t trial);
  /// next() hands out nothing more (the record could not be written).
  void stop() { stopped_ = true; }
  /// Takes `<record>.lock` for this object's life (one sweep decides the
  /// rungs at a time); "" if held, else why not.
  std::string lock();

  /// Slurm (synchronous only): decides the rungs that are done and returns
  /// the current rung's trials not done at it, with `opened` true if this
  /// call promoted them (a new rung) rather than found them undone.
  struct Step {
    std::size_t rung = 0;
    std::vector<SweepJob> jobs;
    bool opened = false;
    bool finished = false;  ///< the last rung is done
  };
  /// Without `record` the promotions are decided but not written (a dry run).
  Step synchronousStep(bool record = true);

  /// True once the last rung is done (synchronous) or nothing is left to
  /// promote or start (ASHA).
  bool finished();
  /// The rungs, the promotions, the pick, the epochs trained against the
  /// full grid's, and (when every trial has trained to the end) the pick's
  /// rank in the full grid.
  /// With `record`, a finished halving's epoch count is written to the
  /// record (what a later full grid is measured against).
  void printSummary(std::ostream& out, const std::string& experiment, bool record);

 private:
  struct Progress {
    std::string status;          ///< readTrialState's, read when first asked
    int64_t epochs = 0;          ///< epochs in the file
    std::vector<double> values;  ///< the criterion after each epoch (validation)
  };
  struct Promotion {
    std::size_t rung = 0;  ///< from this rung to the next
    std::size_t configuration = 0;
    double value = 0.0;  ///< its mean criterion at the rung
  };
  const Progress& progress(std::size_t trial);
  bool doneAt(std::size_t trial, std::size_t rung);
  bool groupDoneAt(std::size_t group, std::size_t rung);
  double valueAt(std::size_t trial, std::size_t rung);
  double groupValue(std::size_t group, std::size_t rung);
  std::size_t reached(std::size_t group) const;
  bool decided(std::size_t rung) const;
  void promote(std::size_t rung, std::size_t group, double value);
  /// The configurations that have reached `rung`.
  std::vector<std::size_t> membersOf(std::size_t rung) const;
  /// Synchronous halving: promotes the best of `members` at `rung`.
  void decide(std::size_t rung, const std::vector<std::size_t>& members);
  void load();
  void save() const;
  std::vector<SweepJob> jobsOf(std::size_t group, std::size_t rung);
  std::vector<SweepJob> synchronousNext();
  std::vector<SweepJob> asynchronousNext();
  int64_t epochsTrained();
  std::string describe(std::size_t group) const;

  const std::vector<TrialSpec>& trials_;
  HalvingSpec spec_;
  bool retryFailed_;
  std::vector<std::vector<std::size_t>> groups_;
  std::vector<std::size_t> groupOf_;  ///< trial → configuration
  std::string recordPath_;
  std::vector<Promotion> promotions_;
  std::map<std::size_t, Progress> progress_;
  std::set<std::pair<std::size_t, std::size_t>> handedOut_;  ///< (trial, rung)
  std::map<std::size_t, std::size_t> outstanding_;           ///< configuration → jobs in flight
  bool stopped_ = false;
  std::optional<TrialLock> lock_;
  std::optional<int64_t> recordedEpochs_;  ///< epochs trained when the halving finished
};

}  // namespace fulcrum
