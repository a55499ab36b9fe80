// Multi-task datasets, held in memory with train / validation / test splits.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/types.h>

#include "framework/task.h"

namespace fulcrum {

/// One split: inputs (N × ...) and one target tensor per task (N, or N × D).
/// Classification targets are int64 class indices; binary and regression
/// targets are float32. A missing label (data read from files) is
/// kMissingClass in a classification target and NaN in a binary or
/// regression one (for an N × D regression target: NaN anywhere in the row).
struct Split {
  torch::Tensor inputs;
  std::vector<torch::Tensor> targets;
  int64_t size() const { return inputs.defined() ? inputs.size(0) : 0; }
  /// The rows `index` (an int64 tensor of row numbers) of the inputs and of
  /// every target, in that order.
  Split rows(const torch::Tensor& index) const;
};

/// The class index that marks a missing classification label.
constexpr int64_t kMissingClass = -1;

/// A dataset ready for training.
struct MultiTaskData {
  Split train, val, test;
  std::vector<TaskSpec> tasks;         ///< the tasks the data defines
  std::vector<int64_t> inputShape;     ///< one example's shape, e.g. {250} or {1, 36, 36}
  /// True if some target holds missing labels: the trainer then masks each
  /// task's loss and metrics to its labelled rows (false: no masking cost).
  bool missingLabels = false;
};

/// Error reading or generating data (a missing file, a bad header). The
/// message names the path and, for packaged data, the Debian package.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A target whose shape does not fit its task's head (conformTargets).
class TargetShapeError : public DataError {
 public:
  TargetShapeError(std::size_t task, const std::string& message)
      : DataError(message), task_(task) {}
  /// The index of the task whose target is wrong.
  std::size_t task() const { return task_; }

 private:
  std::size_t task_;
};

/// Makes every split's targets agree with the heads of `tasks`, the one
/// place every data source passes through (built-in, file and registered
/// kinds): a regression target becomes N × outputs (an N vector is accepted
/// for outputs 1); a classification or binary target becomes N (N × 1 is
/// accepted and squeezed). Anything else throws TargetShapeError naming the
/// task, the split, the shape and the expected one, so that a loss never
/// broadcasts an N target against an N × 1 output into a B × B matrix.
void conformTargets(MultiTaskData& data, const std::vector<TaskSpec>& tasks);

/// Which part of the data a SplitShapeError concerns.
enum class DataPart { kInputs, kTargets, kWhole };

/// A split whose shapes cannot be trained on (checkSplitShapes).
class SplitShapeError : public DataError {
 public:
  SplitShapeError(DataPart part, const std::string& message) : DataError(message), part_(part) {}
  /// The inputs, a target, or the split as a whole.
  DataPart part() const { return part_; }

 private:
  DataPart part_;
};

/// Checks before step 0 what LibTorch would otherwise reject mid-training:
/// the training split has rows (validation and test may be empty, e.g.
/// `val_fraction: 0`: their metrics are then NaN), inputs of rank >= 2
/// (N × F or N × C × H × W), no zero-sized feature dimension, one example
/// shape for all three splits (equal to `data.inputShape`), and one target
/// row per input row. Throws SplitShapeError naming the split and the shapes.
void checkSplitShapes(const MultiTaskData& data);

/// Options of `data: {kind: gradnorm_toy}`: the regression toy of GradNorm
/// (Chen et al., ICML 2018): f_i(x) = σ_i tanh((B + ε_i) x), x ∈ R^inputDim
/// uniform and normalised, B ~ N(0, bStd²), ε_i ~ N(0, epsStd²) (both
/// outputDim × inputDim), squared loss.
struct GradNormToyOptions {
  int64_t tasks = 2;                ///< T >= 1
  std::vector<double> sigmas;       ///< σ_i per task; empty = drawn uniformly in [1, maxSigma]
  double maxSigma = 10.0;           ///< upper bound when σ is drawn (> 1)
  int64_t inputDim = 250;           ///< >= 1
  int64_t outputDim = 100;          ///< >= 1
  double bStd = 10.0;               ///< standard deviation of B's entries
  double epsStd = 3.5;              ///< standard deviation of ε_i's entries
  int64_t trainSize = 9000;         ///< examples
  int64_t valSize = 500;
  int64_t testSize = 500;
};

/// Options of `data: {kind: multi_fashion}` (Lin et al., NeurIPS 2019): two
/// Fashion-MNIST items of different classes on a 36×36 canvas, one at the
/// top-left and one at the bottom-right, each shifted by up to `maxShift`
/// pixels, pixel max on overlap. Tasks: the class of each item. Train and
/// validation composites use disjoint source images from the training file
/// (`valFraction` of them for validation); test composites use t10k.
struct MultiFashionOptions {
  std::string directory = "/usr/share/datasets/fashion-mnist";  ///< the IDX .gz files
  int64_t trainSize = 54000;        ///< composites; each source used about once
  int64_t valSize = 6000;
  int64_t testSize = 10000;
  double valFraction = 0.1;         ///< of the 60000 training sources, in (0, 1)
  int64_t maxShift = 4;             ///< pixels, 0..4
};

/// Generates the GradNorm toy deterministically from `seed`.
MultiTaskData makeGradNormToy(const GradNormToyOptions& options, uint64_t seed);

/// Builds Multi-Fashion deterministically from `seed`. Throws DataError if a
/// file is missing or malformed (naming the path and dataset-fashion-mnist).
MultiTaskData makeMultiFashion(const MultiFashionOptions& options, uint64_t seed);

/// Reads a gzip'd IDX file (big-endian header) into a uint8 tensor of its
/// dimensions. Throws DataError naming the path.
torch::Tensor readIdxGz(const std::string& path);

}  // namespace fulcrum
