// A folder of trial files (what `fulcrum sweep` writes) read as one set:
// every trial's state, its configuration flattened to key paths, and the
// keys that vary between trials, recovered by diffing the configurations.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace fulcrum::results {

/// Configuration keys that never make two trials different configurations:
/// `seed` and `cross_validation.fold` (trials differing only there are
/// replicates: repeats, or the folds of one cross-validation), `output` and
/// `train.threads` (where and how fast, not what, a trial ran).
const std::vector<std::string>& ignoredConfigKeys();

/// Flattens a YAML mapping into key paths ("train.optimizer.lr") and their
/// values as flow YAML ("0.001", "[16, 16]"); sequences are leaves. Throws
/// std::runtime_error if `yaml` does not parse or is not a mapping.
std::map<std::string, std::string> flattenConfig(const std::string& yaml);

/// One trial file, as far as grouping needs it (no curves).
struct TrialEntry {
  std::string path;
  std::string name;      ///< file name without ".h5"
  std::string status;    ///< completed, failed, running
  std::string error;     ///< the file's error attribute
  std::string strategy;  ///< the `strategy` attribute
  int64_t seed = 0;
  /// cross_validation.fold of its configuration; -1 without cross-validation.
  /// Like the seed it names a replicate: folds are averaged, not grouped apart.
  int64_t fold = -1;
  std::string endTime;  ///< the `end_time` attribute (UTC, ISO 8601); "" while running
  std::map<std::string, std::string> config;  ///< flattened `config_yaml`; empty if absent
  /// The strategy name followed by its swept options, "gradnorm alpha=0.12".
  std::string label;
  /// The `run_name` attribute, or where the file has none the strategy and
  /// the swept values, keys shortened ("dwa lr=0.001").
  std::string runName;
  /// Values of the swept keys outside `strategy.` (in sweptKeys' order; "-"
  /// where the trial's configuration has no such key).
  std::vector<std::pair<std::string, std::string>> context;
};

/// A file that is not a readable trial file, and why.
struct UnreadableFile {
  std::string path;
  std::string reason;  ///< the reader's message (it names the file)
};

/// A completed trial file whose configuration (minus ignoredConfigKeys())
/// and seed equal those of another completed file: a `run` and a `sweep`
/// into one folder, a copied file. Only `kept` is counted.
struct DuplicateTrial {
  std::string path;  ///< the file left out
  std::string kept;  ///< the file counted instead
};

/// The trials of a folder or a list of files.
struct TrialSet {
  std::vector<TrialEntry> trials;          ///< readable files, sorted by path
  std::vector<UnreadableFile> unreadable;  ///< missing, truncated, not HDF5...
  /// Keys whose values differ between trials, except ignoredConfigKeys();
  /// sorted.
  std::vector<std::string> sweptKeys;
  /// sweptKeys outside `strategy.`: the columns that, with the label, name a
  /// configuration.
  std::vector<std::string> contextKeys;
  /// Completed trials that repeat another completed trial's configuration
  /// and seed. Of each such group the newest by `end_time` is kept (equal
  /// end times: the first path in sort order); the others are listed here
  /// and left out by compare, report and `export --what summary`.
  std::vector<DuplicateTrial> duplicates;
};

/// True if `path` is listed in set.duplicates (a file left out).
bool isDuplicate(const TrialSet& set, const std::string& path);

/// Every `*.h5` file directly in `folder`, sorted by name, read (attributes
/// only) into a TrialSet. A bad file becomes an UnreadableFile; only a
/// missing or unlistable folder throws (FileError).
TrialSet scanFolder(const std::string& folder);

/// As scanFolder, for the given files.
TrialSet scanFiles(const std::vector<std::string>& paths);

}  // namespace fulcrum::results
