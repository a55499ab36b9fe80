// The `fulcrum` subcommands. Each returns the process exit code: 0 success,
// 1 a trial failed (e.g. a NaN loss), 2 bad input (configuration, data, files).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace fulcrum {

struct ExperimentSpec;
class Strategy;

/// Options of `fulcrum run`.
struct RunOptions {
  std::string experiment;              ///< the YAML file
  std::vector<std::string> overrides;  ///< --set key.path=value
  std::string out;         ///< --out: result file; default <output>/<name>-<strategy>-seed<seed>.h5
  bool overwrite = false;  ///< --overwrite: replace an existing result file
  bool quiet = false;      ///< --quiet: no per-epoch lines
  /// --resume: continue an interrupted trial from its checkpoint (<result>.ckpt);
  /// a completed trial is left alone, one without a checkpoint starts over.
  bool resume = false;
  /// The `run_name` attribute (a sweep trial: strategy and swept values);
  /// "" = the strategy name.
  std::string runName;
  /// The caller holds `<out>.lock` already (a sweep's run-trial); otherwise
  /// runCommand takes it, and refuses to touch a trial that another process
  /// holds (exit kExitRunningElsewhere).
  bool lockHeld = false;
  /// --pause-after E (run-trial): stop after epoch E with status "paused",
  /// the checkpoint kept (TrainHooks::pauseAfterEpoch); 0: train to the end.
  int64_t pauseAfter = 0;
};

/// Where the checkpoint of the trial writing `resultPath` goes.
std::string checkpointPathOf(const std::string& resultPath);

/// The stem of the trial's saved models (train.save_model): the result path
/// without ".h5"; the files are "<stem>.final.pt" and "<stem>.best.pt".
std::string modelPathOf(const std::string& resultPath);

/// What a trial's result file says.
struct TrialFileState {
  /// missing, completed, failed, interrupted (failed with an error starting
  /// "interrupted"), running (being written, or its writer was killed),
  /// damaged (shown damaged: a rerun may replace it), unreadable (cannot be
  /// read for another reason: no permission, a newer schema_version, a
  /// screening timeout or crash, malformed curves; never replaced) or
  /// foreign (readable, but another configuration or seed than the caller
  /// expects; never replaced).
  std::string status;
  std::string error;  ///< the file's `error` attribute, or why it has that status
};

/// What a trial file must hold to be the trial a caller means.
struct TrialIdentity {
  std::string id;     ///< trialId() of its configuration (framework/sweep.h)
  uint64_t seed = 0;  ///< its `seed`
};

/// The identity of the trial that `spec` configures.
TrialIdentity identityOf(const ExperimentSpec& spec);

/// The state of the result file at `path` from the one reading that every
/// command shares (results::readTrialFile); with `expected`, a readable file
/// whose configuration or seed is not the expected one is "foreign". Never
/// throws for a bad file.
TrialFileState readTrialState(const std::string& path, const TrialIdentity* expected = nullptr);

/// The strategy of `spec`, after validating its options, the model's
/// (models/registry.h: architecture, trunk, head, the memory they need) and
/// that the model offers what the strategy needs. ConfigError located at
/// the key (or the `--set` that wrote it) otherwise.
std::unique_ptr<Strategy> validateTrial(const ExperimentSpec& spec);

/// Prints "fulcrum: <message>" to stderr and returns `code`.
int reportError(const std::string& message, int code = 2);

/// Creates `folder` if needed and checks that it accepts a new file;
/// std::runtime_error naming the folder otherwise.
void prepareOutputFolder(const std::filesystem::path& folder);

/// "; no space left on the file system of `folder` (N bytes free)" when it
/// is (nearly) full, else "": what a failed write most likely means.
std::string noSpaceNote(const std::filesystem::path& folder);

int runCommand(const RunOptions& options);
int listCommand();
/// `fulcrum list NAME`: the strategy's description and every option it reads,
/// with its type, default and bounds; exit 2 for an unknown name.
int listStrategyCommand(const std::string& name);
int showCommand(const std::vector<std::string>& files);
/// fulcrum's, LibTorch's and HDF5's versions and the BLAS library in use.
std::string versionText();

}  // namespace fulcrum
