// Connects the trainer's RunLog to the HDF5 trial file of results/.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "framework/run_log.h"
#include "results/trial_file.h"

namespace fulcrum {

/// Writes a trial's curves to one HDF5 file (layout in the README):
/// steps/{step,epoch}, steps/loss/<task>, steps/weight/<task>,
/// steps/time/<name>, steps/diagnostics/<name>, epochs/{epoch,seconds},
/// epochs/<split>/<task>/<metric>; when the trial logs gradients
/// gradients/{step,epoch,direction_norm,step_norm}, gradients/norm/<task>,
/// gradients/cosine/<task>/<later task>; and with train.on_nan: skip_step
/// epochs/skipped_steps plus the integer attribute `skipped_steps` (total
/// over the logged epochs) at the end; after early stopping the attributes
/// `stopped_epoch` (epochs trained) and `stop_reason`. Flushes after every epoch and at least
/// every `flushSeconds` during one.
class Hdf5RunLog : public RunLog {
 public:
  Hdf5RunLog(std::string path, bool overwrite, double flushSeconds = 5.0);
  void begin(const TrialDescription& description) override;
  void step(const StepRecord& record) override;
  void gradients(const GradientRecord& record) override;
  void epoch(const EpochRecord& record) override;
  void stoppedEarly(int64_t epochs, const std::string& reason) override;
  void end(const std::string& status, const std::string& error) override;

 private:
  void append(std::size_t first, const std::vector<double>& values, std::size_t count);
  void flushIfDue();

  std::string path_;
  bool overwrite_;
  double flushSeconds_;
  std::unique_ptr<results::TrialWriter> writer_;
  std::chrono::steady_clock::time_point lastFlush_;
  std::size_t tasks_ = 0, timings_ = 0, diagnostics_ = 0;
  std::size_t stepIndex_ = 0, stepEpoch_ = 0, losses_ = 0, weights_ = 0, times_ = 0, diags_ = 0;
  std::size_t epochIndex_ = 0, epochSeconds_ = 0, metrics_ = 0;
  std::vector<std::size_t> metricCounts_;
  std::size_t splits_ = 0;
  std::size_t gradients_ = 0;   ///< first gradients/ curve; 0 = none declared
  bool countsSkipped_ = false;  // epochs/skipped_steps and the skipped_steps attribute
  std::size_t skippedIndex_ = 0;
  int64_t skippedTotal_ = 0;           // over the epochs logged
  results::Attributes endAttributes_;  // written by end(): early stopping's
};

}  // namespace fulcrum
