// Datasets read from the user's own files: `data: {kind: hdf5}` and
// `data: {kind: csv}`, with missing labels, splits from the file or by seeded
// fractions, and optional standardisation. Registered into the framework's
// dataset table (framework/extension_registry.h); framework/ itself never
// includes HDF5.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "framework/config_node.h"
#include "framework/data.h"
#include "framework/extension_registry.h"
#include "framework/task.h"

namespace fulcrum {

/// Registers the data kinds `hdf5` and `csv`, and the offline dense
/// benchmark `dense_fashion` (datasets/dense_fashion.h); calling it again does nothing.
void registerFileDatasets();

/// The options shared by `hdf5` and `csv` (README, "Your own data").
struct FileDataOptions {
  std::string path;                       ///< the file, resolved against the experiment's folder
  std::string inputs;                     ///< hdf5: the input dataset (N × F or N × C × H × W)
  std::vector<std::string> inputColumns;  ///< csv: input columns; empty = every non-target column
  /// Task name → dataset (hdf5) or column (csv), in the order of `targets:`.
  std::vector<std::pair<std::string, std::string>> targets;
  bool groups = false;        ///< hdf5 `split: groups`: /train, /val, /test hold the datasets
  double valFraction = 0.1;   ///< `split: fractions`: share of rows for validation, [0, 1)
  double testFraction = 0.1;  ///< share for test, [0, 1); val + test < 1
  uint64_t splitSeed = 0;     ///< `split_seed`, default the experiment's seed
  double missingLabel =
      -1;  ///< classification / binary: this value marks a missing label (NaN always does)
  bool standardize = false;  ///< per-feature (x − mean) / std, both from the training split
  /// csv `allow_id_columns`: input columns kept although they look like a row
  /// index or an id (kMinRowsForIdCheck rows or more, integer valued, all distinct).
  std::vector<std::string> allowIdColumns;
  /// csv `allow_unscaled`: keep raw inputs (standardize: false) whose column
  /// standard deviations differ by more than kMaxUnscaledRatio. Default false.
  bool allowUnscaled = false;
};

/// A csv input column with at least this many rows whose values are all
/// integers and all distinct looks like a row index or an id: an error unless
/// listed in `allow_id_columns`. Fewer rows are never flagged (a small file's
/// genuine integer feature is easily all distinct).
constexpr int64_t kMinRowsForIdCheck = 20;
/// With `standardize: false`, csv input columns whose largest and smallest
/// non-zero standard deviations (over all rows) differ by more than this
/// factor are an error unless `allow_unscaled: true`.
constexpr double kMaxUnscaledRatio = 1e3;

/// `cell` for an error message: control bytes escaped (a NUL as \0, others
/// as \xNN, so that no byte cuts or garbles the message) and, beyond
/// 64 characters, cut to its first 48 with its length said.
std::string cellForMessage(const std::string& cell);

/// Reads and validates the options of `kind` ("hdf5" or "csv").
FileDataOptions readFileDataOptions(const ConfigNode& options, const std::string& kind,
                                    const DatasetContext& context);

/// One split's raw values before labels are checked: inputs N × ... float32,
/// one float64 target tensor per task (N, or N × D).
struct RawSplit {
  torch::Tensor inputs;
  std::vector<torch::Tensor> targets;
};

/// Converts raw target values into the trainer's label convention for `task`
/// (framework/data.h): NaN or `missingLabel` → missing (classification and
/// binary), NaN → missing (regression; a regression target is N × outputs).
/// Throws ConfigError through `where.fail(key, ...)` for a label out of range
/// or an infinite regression value, naming `what` (the dataset or column) and
/// the row (`rowName(i)`).
torch::Tensor convertLabels(const torch::Tensor& raw, const TaskSpec& task, double missingLabel,
                            const ConfigNode& where, const std::string& key,
                            const std::string& what,
                            const std::function<std::string(int64_t)>& rowName);

/// Splits `all` by seeded fractions into train / val / test (a permutation of
/// the rows drawn from `seed`; rounding gives val and test round(N·fraction)).
std::vector<RawSplit> splitByFractions(const RawSplit& all, double valFraction, double testFraction,
                                       uint64_t seed);

/// (x − mean) / std per feature with mean and std of the training split (a
/// feature with std 0 is only centred).
void standardize(MultiTaskData& data);

}  // namespace fulcrum
