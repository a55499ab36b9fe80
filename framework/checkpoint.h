// Checkpoints of a running trial: everything the trainer needs to continue it
// bit for bit — the model, the optimizer, the strategy's state, the random
// number generators and where training stands. One file per trial: LibTorch's
// archive (a zip file) followed by a 20-byte trailer — "FULCRC32", the
// archive's length (uint64) and its CRC-32 (zlib, uint32), both
// little-endian — written to a temporary file, synced and renamed.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "framework/schedule.h"
#include "framework/strategy.h"

namespace torch::nn {
class Module;
}
namespace torch::optim {
class Optimizer;
}

namespace fulcrum {

/// A checkpoint that cannot be written, read or used; the message names the file.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Where a trial stands at the end of an epoch, besides its tensors.
struct TrainingPosition {
  int64_t epochs = 0;        ///< epochs completed: the next epoch to run, from 0
  int64_t step = 0;          ///< global steps taken (skipped ones included)
  int64_t skippedSteps = 0;  ///< optimizer steps skipped so far (train.on_nan: skip_step)
  int64_t threads = 0;       ///< intra-op threads the trial computed with (0 = not recorded)
  std::string shuffle;       ///< state of the batch-order generator (std::mt19937_64, as text)
  std::vector<double> lastWeights;  ///< the task weights of the last step
  PlateauState plateau;             ///< the learning-rate schedule's (reduce-on-plateau)
  EarlyStoppingState stopping;      ///< early stopping's
  /// train.save_model: best: the criterion's value of the model saved (NaN: none yet).
  double savedBest = std::numeric_limits<double>::quiet_NaN();
};

/// Writes a checkpoint to `path`: `position`, the model's parameters and
/// buffers, the optimizer's state, `strategy` and LibTorch's default CPU
/// generator, plus `config` (the trial's resolved configuration, checked when
/// loading). Written to a temporary file beside `path`, synced and renamed,
/// so a process killed meanwhile leaves the previous checkpoint intact. Only
/// a regular file is replaced: anything else at `path` (a FIFO, a symbolic
/// link, ...) is left alone and reported. Throws CheckpointError naming the path.
void saveCheckpoint(const std::string& path, const std::string& config,
                    const TrainingPosition& position, const torch::nn::Module& model,
                    const torch::optim::Optimizer& optimizer, const StrategyState& strategy);

/// What loadCheckpoint() read besides what it restored in place.
struct LoadedCheckpoint {
  TrainingPosition position;
  StrategyState strategy;
};

/// Reads the checkpoint at `path` into `model` and `optimizer` (built as for
/// a fresh trial) and restores LibTorch's default CPU generator. Throws
/// CheckpointError naming the path if the file is not a regular file (it is
/// opened without blocking), its CRC-32 does not match the archive's bytes
/// (checked before LibTorch parses any of them), it is not a fulcrum
/// checkpoint, or it was written for another configuration than `config`.
LoadedCheckpoint loadCheckpoint(const std::string& path, const std::string& config,
                                torch::nn::Module& model, torch::optim::Optimizer& optimizer);

/// What a saved model file (train.save_model) says about itself.
struct SavedModel {
  std::string config;     ///< the trial's resolved configuration (YAML)
  std::string which;      ///< "final" or "best"
  int64_t epoch = 0;      ///< the epoch (1-based) whose parameters these are
  std::string criterion;  ///< best: the validation criterion ("loss", "TASK/METRIC"); final: ""
  double value = 0.0;     ///< best: its value then; final: NaN
};

/// Writes `model`'s parameters and buffers with `about` to `path`, as a
/// checkpoint is written (archive, checksum trailer, temporary file synced
/// and renamed; only a regular file is replaced). CheckpointError on failure.
void saveModel(const std::string& path, const SavedModel& about, const torch::nn::Module& model);

/// Reads a model file into `model` (built for the experiment as for
/// training); CheckpointError naming the path if it is not a regular file,
/// damaged (CRC), not a fulcrum model file, or does not fit `model`.
SavedModel loadModel(const std::string& path, torch::nn::Module& model);

/// Checkpoints are written as "<path>.part-<pid>" and renamed over `path`:
/// this returns "<path>.part-", for whoever removes a killed writer's leftovers.
std::string checkpointStagingPrefix(const std::string& path);

}  // namespace fulcrum
