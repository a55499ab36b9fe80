// Typed, location-aware reading of YAML mappings. Every experiment section
// and every strategy's options are read through a ConfigNode, so every error
// names the file, line, column and key path, and unknown keys are rejected
// with the closest valid key suggested.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace fulcrum {

/// An error in an experiment file or in command-line overrides. what() reads
/// "FILE:LINE:COLUMN: KEY.PATH: message" (line and column 1-based; both
/// omitted when the line is 0, e.g. for a `--set` override).
class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& file, int line, int column, const std::string& keyPath,
              const std::string& message);
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  int column() const { return column_; }
  const std::string& keyPath() const { return keyPath_; }
  /// The message without the location prefix.
  const std::string& message() const { return message_; }

 private:
  std::string file_;
  int line_;
  int column_;
  std::string keyPath_;
  std::string message_;
};

/// A key asked for while options were being recorded: what `fulcrum list
/// NAME` prints.
struct OptionRecord {
  std::string key;         ///< key path below the recorded mapping
  std::string type;        ///< "integer", "number", "true/false", "string", "list of numbers", ...
  std::string fallback;    ///< the default as text, "(required)" when there is none
  std::string constraint;  ///< bounds or allowed values, "" when none
};

/// A YAML mapping read key by key. Getters mark keys as used; finish()
/// rejects the keys nobody asked for. Copies share the used-key record.
class ConfigNode {
 public:
  /// `node` must be a mapping (or null, read as an empty mapping); `file`
  /// and `keyPath` locate it for messages ("" for the root).
  ConfigNode(YAML::Node node, std::string file, std::string keyPath);

  /// True if `key` is present (and not null).
  bool has(const std::string& key) const;
  /// The keys present, in file order.
  std::vector<std::string> keys() const;

  /// A number; `min`/`max` are inclusive bounds checked with the value in the message.
  double getDouble(const std::string& key, double fallback, double min = -1e300,
                   double max = 1e300) const;
  double requireDouble(const std::string& key, double min = -1e300, double max = 1e300) const;
  /// An integer within [min, max].
  int64_t getInt(const std::string& key, int64_t fallback, int64_t min = INT64_MIN,
                 int64_t max = INT64_MAX) const;
  int64_t requireInt(const std::string& key, int64_t min = INT64_MIN,
                     int64_t max = INT64_MAX) const;
  bool getBool(const std::string& key, bool fallback) const;
  /// A string; if `allowed` is not empty the value must be one of them.
  std::string getString(const std::string& key, const std::string& fallback,
                        const std::vector<std::string>& allowed = {}) const;
  std::string requireString(const std::string& key,
                            const std::vector<std::string>& allowed = {}) const;
  /// A list of numbers (each within [min, max]); `fallback` if absent.
  std::vector<double> getDoubleList(const std::string& key, const std::vector<double>& fallback,
                                    double min = -1e300, double max = 1e300) const;
  /// A list of rows, each a list of `columns` numbers within [min, max]
  /// (e.g. points [[x1, x2], ...]); `fallback` if absent.
  std::vector<std::vector<double>> getDoubleRows(const std::string& key,
                                                 const std::vector<std::vector<double>>& fallback,
                                                 std::size_t columns, double min = -1e300,
                                                 double max = 1e300) const;
  /// A list of integers (each within [min, max]); `fallback` if absent.
  std::vector<int64_t> getIntList(const std::string& key, const std::vector<int64_t>& fallback,
                                  int64_t min = INT64_MIN, int64_t max = INT64_MAX) const;

  /// A list of strings; `fallback` if absent.
  std::vector<std::string> getStringList(const std::string& key,
                                         const std::vector<std::string>& fallback) const;

  /// The mapping under `key` (an empty one if absent); marks `key` used.
  ConfigNode child(const std::string& key) const;
  /// The sequence of mappings under `key`; marks `key` used. Error if not a sequence.
  std::vector<ConfigNode> children(const std::string& key) const;

  /// Throws ConfigError located at `key` (or at this mapping if `key` is
  /// empty or absent).
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  /// Throws ConfigError for the first key present that no getter asked for,
  /// naming the closest valid key (from the keys asked for so far and
  /// `alsoValid`) when one is close.
  void finish(const std::vector<std::string>& alsoValid = {}) const;

  /// From now on every getter of this mapping and of its children records
  /// its key, type, default and bounds (first ask of a key wins).
  void recordOptions();
  /// What was recorded, in the order asked (empty unless recordOptions()).
  std::vector<OptionRecord> recordedOptions() const;

  /// Key path of this mapping ("" for the root), and of a key in it.
  const std::string& keyPath() const { return keyPath_; }
  std::string pathOf(const std::string& key) const;
  const std::string& file() const { return file_; }
  /// The underlying YAML (for dumping the resolved configuration).
  const YAML::Node& yaml() const { return node_; }

 private:
  YAML::Node at(const std::string& key) const;
  double readNumber(const YAML::Node& item, const std::string& itemPath, double min,
                    double max) const;
  [[noreturn]] void failAt(const YAML::Node& where, const std::string& keyPath,
                           const std::string& message) const;
  void record(const std::string& key, const std::string& type, const std::string& fallback,
              const std::string& constraint = "") const;
  YAML::Node node_;
  std::string file_;
  std::string keyPath_;
  std::shared_ptr<std::set<std::string>> used_;
  /// Where getters record what they ask for; null when not recording.
  struct Recording {
    std::string base;  ///< key path of the mapping recordOptions() was called on
    std::vector<OptionRecord> records;
  };
  std::shared_ptr<Recording> recording_;
};

/// The keys of a `kind:` mapping (optimizers, schedules) that only some
/// kinds read: key → the kinds that read it.
class KindKeys {
 public:
  KindKeys(std::string kind, std::vector<std::pair<std::string, std::vector<std::string>>> table)
      : kind_(std::move(kind)), table_(std::move(table)) {}
  /// True if the kind reads `key`; std::logic_error for a key not in the table.
  bool uses(const std::string& key) const;
  /// Refuses (ConfigError at the key) a key of the table present in `node`
  /// that the kind does not read, naming the kinds that do: finish() would
  /// call a real key "unknown".
  void refuseOthers(const ConfigNode& node) const;

 private:
  std::string kind_;
  std::vector<std::pair<std::string, std::vector<std::string>>> table_;
};

/// A scalar in plain decimal digits as an integer; false for anything else
/// (including "010", "0x10", "1e3" and values beyond long long).
bool readDecimalInteger(const YAML::Node& node, long long& result);
/// A scalar in plain decimal notation (digits, point, exponent; or YAML's
/// .inf/.nan) as a double; false for "010", "0x10" and non-numbers.
bool readDecimalNumber(const YAML::Node& node, double& result);

/// Levenshtein distance, for "did you mean" suggestions.
std::size_t editDistance(const std::string& a, const std::string& b);

/// The candidate closest to `word` if it is close enough to be a plausible
/// typo, else "".
std::string closestMatch(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace fulcrum
