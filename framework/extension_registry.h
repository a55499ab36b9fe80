// Datasets added by name: the file datasets of datasets/ and any a program
// of its own registers (see README "fulcrum as a library"). The built-in
// kinds (multi_fashion, gradnorm_toy) are not in this table; experiment.cpp
// handles them directly. Models have their own table (models/registry.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/data.h"
#include "framework/task.h"

namespace fulcrum {

/// What a dataset's hooks know besides their options.
struct DatasetContext {
  uint64_t seed = 0;  ///< the experiment's seed
  std::string
      experimentFolder;  ///< folder of the experiment file: relative paths resolve against it
};

/// One registered `data.kind`.
struct DatasetInfo {
  std::string name;         ///< as written in `data.kind`
  std::string description;  ///< one line
  /// Validates the options (the `data:` mapping; `kind` is already read) by
  /// reading every key it knows through `options` (the rest are rejected
  /// afterwards), before anything runs, and returns the tasks in head order.
  /// `declared` is the experiment's `tasks:` list (empty if absent; kinds
  /// default to regression and outputs to 1 there). Throws ConfigError.
  std::function<std::vector<TaskSpec>(const ConfigNode& options,
                                      const std::vector<TaskSpec>& declared,
                                      const DatasetContext& context)>
      tasks;
  /// Loads the data for `tasks` (as returned by `tasks`). Throws ConfigError
  /// (located at the option concerned) or DataError.
  std::function<MultiTaskData(const ConfigNode& options, const std::vector<TaskSpec>& tasks,
                              const DatasetContext& context)>
      load;
};

/// Adds a dataset kind; std::invalid_argument if the name is not plain, is
/// taken (also by a built-in kind) or a hook is empty. Call from main().
void registerDataset(DatasetInfo info);
/// The registered datasets, in registration order.
const std::vector<DatasetInfo>& datasetTable();
/// The row named `name`, or nullptr.
const DatasetInfo* findDataset(const std::string& name);

/// True if `name` is a plain name: letters, digits, `_ - .`, not empty.
bool isPlainName(const std::string& name);

}  // namespace fulcrum
