#include "framework/config_node.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

namespace fulcrum {

namespace {

// yaml-cpp marks are 0-based; a default-constructed or missing node has -1.
int oneBased(int zeroBased) { return zeroBased < 0 ? 0 : zeroBased + 1; }

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Scalar:
      return fmt::format("'{}'", node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "an undefined value";
  }
}

std::string formatNumber(double value) { return fmt::format("{:g}", value); }

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// YAML's spellings of infinity and not-a-number; read, then refused as not finite.
bool isYamlSpecial(const std::string& text) {
  static const std::vector<std::string> specials = {".inf",  ".Inf",  ".INF",  "+.inf",
                                                    "+.Inf", "+.INF", "-.inf", "-.Inf",
                                                    "-.INF", ".nan",  ".NaN",  ".NAN"};
  return std::find(specials.begin(), specials.end(), text) != specials.end();
}

/// How a scalar's text reads as a number.
enum class NumberText {
  kDecimal,      ///< plain decimal (digits, point, exponent)
  kLeadingZero,  ///< "010": octal in YAML 1.1
  kOtherBase,    ///< "0x10", "0o7", "0b1"
  kNotNumber,    ///< anything else (with `integer`, also "1.5" and "1e3")
};

NumberText classifyNumber(const std::string& text, bool integer) {
  std::size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  const std::size_t digitsStart = i;
  while (i < text.size() && isDigit(text[i])) ++i;
  const std::size_t intDigits = i - digitsStart;
  if (intDigits > 1 && text[digitsStart] == '0') return NumberText::kLeadingZero;
  for (const char* prefix : {"0x", "0X", "0o", "0b"}) {
    if (text.compare(digitsStart, 2, prefix) == 0) return NumberText::kOtherBase;
  }
  if (integer)
    return i == text.size() && intDigits > 0 ? NumberText::kDecimal : NumberText::kNotNumber;
  std::size_t fractionDigits = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && isDigit(text[i])) ++i, ++fractionDigits;
  }
  if (intDigits + fractionDigits == 0) return NumberText::kNotNumber;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    const std::size_t exponentStart = i;
    while (i < text.size() && isDigit(text[i])) ++i;
    if (i == exponentStart) return NumberText::kNotNumber;
  }
  return i == text.size() ? NumberText::kDecimal : NumberText::kNotNumber;
}

// The message for a scalar that looks like a number in another base or with
// a leading zero ("epochs: 010" is 8 in YAML 1.1), or "" if it is not one.
std::string notDecimalMessage(const YAML::Node& value) {
  if (!value.IsScalar()) return "";
  switch (classifyNumber(value.Scalar(), false)) {
    case NumberText::kLeadingZero:
      return fmt::format(
          "'{}' has a leading zero (YAML 1.1 reads it as octal): write numbers "
          "in plain decimal digits",
          value.Scalar());
    case NumberText::kOtherBase:
      return fmt::format("'{}' is not decimal: write numbers in plain decimal digits",
                         value.Scalar());
    default:
      return "";
  }
}

}  // namespace

bool readDecimalInteger(const YAML::Node& node, long long& result) {
  return node.IsScalar() && classifyNumber(node.Scalar(), true) == NumberText::kDecimal &&
         YAML::convert<long long>::decode(node, result);
}

bool readDecimalNumber(const YAML::Node& node, double& result) {
  if (!node.IsScalar()) return false;
  if (!isYamlSpecial(node.Scalar()) &&
      classifyNumber(node.Scalar(), false) != NumberText::kDecimal) {
    return false;
  }
  return YAML::convert<double>::decode(node, result);
}

namespace {

std::string intRange(int64_t min, int64_t max) {
  if (max == INT64_MAX && min != INT64_MIN) return fmt::format(">= {}", min);
  if (min == INT64_MIN && max != INT64_MAX) return fmt::format("<= {}", max);
  return fmt::format("in [{}, {}]", min, max);
}

}  // namespace

ConfigError::ConfigError(const std::string& file, int line, int column, const std::string& keyPath,
                         const std::string& message)
    : std::runtime_error(fmt::format("{}{}: {}{}", file,
                                     line > 0 ? fmt::format(":{}:{}", line, column) : "",
                                     keyPath.empty() ? "" : keyPath + ": ", message)),
      file_(file),
      line_(line),
      column_(column),
      keyPath_(keyPath),
      message_(message) {}

std::size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string closestMatch(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t bestDistance = std::numeric_limits<std::size_t>::max();
  for (const auto& candidate : candidates) {
    const std::size_t distance = editDistance(word, candidate);
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  // A typo changes a few characters; beyond a third of the word it is another word.
  const std::size_t limit = std::max<std::size_t>(2, word.size() / 3);
  return bestDistance <= limit ? best : std::string();
}

ConfigNode::ConfigNode(YAML::Node node, std::string file, std::string keyPath)
    : node_(std::move(node)),
      file_(std::move(file)),
      keyPath_(std::move(keyPath)),
      used_(std::make_shared<std::set<std::string>>()) {
  if (!node_.IsDefined() || node_.IsNull()) {
    node_ = YAML::Node(YAML::NodeType::Map);
    return;
  }
  if (!node_.IsMap())
    failAt(node_, keyPath_, "expected a mapping of keys to values, got " + describe(node_));
  std::set<std::string> seen;
  for (const auto& entry : node_) {
    if (!entry.first.IsScalar()) failAt(entry.first, keyPath_, "keys must be plain names");
    const std::string key = entry.first.Scalar();
    if (!seen.insert(key).second) failAt(entry.first, pathOf(key), "duplicate key");
  }
}

std::string ConfigNode::pathOf(const std::string& key) const {
  return keyPath_.empty() ? key : keyPath_ + "." + key;
}

void ConfigNode::failAt(const YAML::Node& where, const std::string& keyPath,
                        const std::string& message) const {
  const YAML::Mark mark = where.IsDefined() ? where.Mark() : node_.Mark();
  throw ConfigError(file_, oneBased(mark.line), oneBased(mark.column), keyPath, message);
}

void ConfigNode::fail(const std::string& key, const std::string& message) const {
  if (!key.empty() && has(key)) failAt(at(key), pathOf(key), message);
  failAt(node_, key.empty() ? keyPath_ : pathOf(key), message);
}

YAML::Node ConfigNode::at(const std::string& key) const {
  for (const auto& entry : node_) {
    if (entry.first.Scalar() == key) return entry.second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

bool ConfigNode::has(const std::string& key) const {
  const YAML::Node value = at(key);
  return value.IsDefined() && !value.IsNull();
}

std::vector<std::string> ConfigNode::keys() const {
  std::vector<std::string> result;
  for (const auto& entry : node_) result.push_back(entry.first.Scalar());
  return result;
}

void ConfigNode::recordOptions() {
  recording_ = std::make_shared<Recording>();
  recording_->base = keyPath_;
}

std::vector<OptionRecord> ConfigNode::recordedOptions() const {
  return recording_ ? recording_->records : std::vector<OptionRecord>{};
}

void ConfigNode::record(const std::string& key, const std::string& type,
                        const std::string& fallback, const std::string& constraint) const {
  if (!recording_) return;
  std::string path = pathOf(key);
  if (!recording_->base.empty() && path.rfind(recording_->base + ".", 0) == 0) {
    path = path.substr(recording_->base.size() + 1);
  }
  for (const auto& existing : recording_->records) {
    if (existing.key == path) return;
  }
  recording_->records.push_back({path, type, fallback, constraint});
}

namespace {

std::string numberRange(double min, double max) {
  if (min <= -1e300 && max >= 1e300) return "";
  if (max >= 1e300) return ">= " + formatNumber(min);
  if (min <= -1e300) return "<= " + formatNumber(max);
  return fmt::format("in [{}, {}]", formatNumber(min), formatNumber(max));
}

std::string integerRange(int64_t min, int64_t max) {
  return min == INT64_MIN && max == INT64_MAX ? "" : intRange(min, max);
}

template <typename T>
std::string listText(const std::vector<T>& values) {
  std::vector<std::string> items;
  for (const auto& v : values) {
    if constexpr (std::is_same_v<T, double>) {
      items.push_back(formatNumber(v));
    } else {
      items.push_back(fmt::format("{}", v));
    }
  }
  return fmt::format("[{}]", fmt::join(items, ", "));
}

}  // namespace

double ConfigNode::getDouble(const std::string& key, double fallback, double min,
                             double max) const {
  record(key, "number", formatNumber(fallback), numberRange(min, max));
  used_->insert(key);
  if (!has(key)) return fallback;
  return requireDouble(key, min, max);
}

double ConfigNode::requireDouble(const std::string& key, double min, double max) const {
  record(key, "number", "(required)", numberRange(min, max));
  used_->insert(key);
  if (!has(key)) fail(key, "required number is missing");
  const YAML::Node value = at(key);
  double result = 0.0;
  if (const std::string message = notDecimalMessage(value); !message.empty()) {
    failAt(value, pathOf(key), message);
  }
  if (!readDecimalNumber(value, result)) {
    failAt(value, pathOf(key), "expected a number, got " + describe(value));
  }
  if (!std::isfinite(result))
    failAt(value, pathOf(key), "expected a finite number, got " + describe(value));
  if (result < min || result > max) {
    failAt(value, pathOf(key),
           fmt::format("{} is out of range: must be {}", formatNumber(result),
                       max >= 1e300 ? ">= " + formatNumber(min)
                       : min <= -1e300
                           ? "<= " + formatNumber(max)
                           : fmt::format("in [{}, {}]", formatNumber(min), formatNumber(max))));
  }
  return result;
}

int64_t ConfigNode::getInt(const std::string& key, int64_t fallback, int64_t min,
                           int64_t max) const {
  record(key, "integer", std::to_string(fallback), integerRange(min, max));
  used_->insert(key);
  if (!has(key)) return fallback;
  return requireInt(key, min, max);
}

int64_t ConfigNode::requireInt(const std::string& key, int64_t min, int64_t max) const {
  record(key, "integer", "(required)", integerRange(min, max));
  used_->insert(key);
  if (!has(key)) fail(key, "required integer is missing");
  const YAML::Node value = at(key);
  long long result = 0;
  if (const std::string message = notDecimalMessage(value); !message.empty()) {
    failAt(value, pathOf(key), message);
  }
  if (!readDecimalInteger(value, result)) {
    // "1e12" or "99999999999999999999" are whole numbers that long long does
    // not read; "expected an integer" would be a puzzling answer to them.
    double whole = 0.0;
    if (readDecimalNumber(value, whole) && std::isfinite(whole) && whole == std::floor(whole)) {
      if (std::abs(whole) >= 0x1p63 || whole < static_cast<double>(min) ||
          whole > static_cast<double>(max)) {
        failAt(value, pathOf(key),
               fmt::format("'{}' is out of range: must be {}", value.Scalar(), intRange(min, max)));
      }
      failAt(value, pathOf(key),
             fmt::format("expected an integer in plain digits (e.g. {}), got '{}'",
                         static_cast<long long>(whole), value.Scalar()));
    }
    failAt(value, pathOf(key), "expected an integer, got " + describe(value));
  }
  if (result < min || result > max) {
    failAt(value, pathOf(key),
           fmt::format("{} is out of range: must be {}", result, intRange(min, max)));
  }
  return result;
}

bool ConfigNode::getBool(const std::string& key, bool fallback) const {
  record(key, "true/false", fallback ? "true" : "false");
  used_->insert(key);
  if (!has(key)) return fallback;
  const YAML::Node value = at(key);
  bool result = false;
  if (!value.IsScalar() || !YAML::convert<bool>::decode(value, result)) {
    failAt(value, pathOf(key), "expected true or false, got " + describe(value));
  }
  return result;
}

std::string ConfigNode::getString(const std::string& key, const std::string& fallback,
                                  const std::vector<std::string>& allowed) const {
  record(key, "string", fallback.empty() ? "\"\"" : fallback,
         allowed.empty() ? "" : fmt::format("one of {}", fmt::join(allowed, ", ")));
  used_->insert(key);
  if (!has(key)) return fallback;
  return requireString(key, allowed);
}

std::string ConfigNode::requireString(const std::string& key,
                                      const std::vector<std::string>& allowed) const {
  record(key, "string", "(required)",
         allowed.empty() ? "" : fmt::format("one of {}", fmt::join(allowed, ", ")));
  used_->insert(key);
  if (!has(key)) fail(key, "required value is missing");
  const YAML::Node value = at(key);
  if (!value.IsScalar()) failAt(value, pathOf(key), "expected a string, got " + describe(value));
  const std::string result = value.Scalar();
  if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), result) == allowed.end()) {
    std::string message = fmt::format("'{}' is not one of: {}", result, fmt::join(allowed, ", "));
    const std::string suggestion = closestMatch(result, allowed);
    if (!suggestion.empty()) message += fmt::format(" (did you mean '{}'?)", suggestion);
    failAt(value, pathOf(key), message);
  }
  return result;
}

namespace {

template <typename T, typename Read>
std::vector<T> readList(const ConfigNode& self, const YAML::Node& value, const std::string& key,
                        Read read) {
  if (!value.IsSequence()) self.fail(key, "expected a list, got " + describe(value));
  std::vector<T> result;
  for (std::size_t i = 0; i < value.size(); ++i) {
    result.push_back(read(value[i], i));
  }
  return result;
}

}  // namespace

double ConfigNode::readNumber(const YAML::Node& item, const std::string& itemPath, double min,
                              double max) const {
  double result = 0.0;
  if (const std::string message = notDecimalMessage(item); !message.empty())
    failAt(item, itemPath, message);
  if (!readDecimalNumber(item, result) || !std::isfinite(result)) {
    failAt(item, itemPath, "expected a finite number, got " + describe(item));
  }
  if (result < min || result > max) {
    failAt(item, itemPath,
           fmt::format("{} is out of range: must be in [{}, {}]", formatNumber(result),
                       formatNumber(min), formatNumber(max)));
  }
  return result;
}

std::vector<double> ConfigNode::getDoubleList(const std::string& key,
                                              const std::vector<double>& fallback, double min,
                                              double max) const {
  record(key, "list of numbers", listText(fallback), numberRange(min, max));
  used_->insert(key);
  if (!has(key)) return fallback;
  return readList<double>(*this, at(key), key, [&](const YAML::Node& item, std::size_t i) {
    return readNumber(item, fmt::format("{}[{}]", pathOf(key), i), min, max);
  });
}

std::vector<std::vector<double>> ConfigNode::getDoubleRows(
    const std::string& key, const std::vector<std::vector<double>>& fallback, std::size_t columns,
    double min, double max) const {
  std::vector<std::string> rows;
  for (const auto& row : fallback) rows.push_back(listText(row));
  record(key, fmt::format("list of {}-number rows", columns),
         fmt::format("[{}]", fmt::join(rows, ", ")), numberRange(min, max));
  used_->insert(key);
  if (!has(key)) return fallback;
  return readList<std::vector<double>>(
      *this, at(key), key, [&](const YAML::Node& row, std::size_t i) {
        const std::string rowPath = fmt::format("{}[{}]", pathOf(key), i);
        if (!row.IsSequence() || row.size() != columns) {
          failAt(row, rowPath,
                 fmt::format("expected a list of {} numbers, got {}", columns, describe(row)));
        }
        std::vector<double> values;
        for (std::size_t k = 0; k < columns; ++k) {
          values.push_back(readNumber(row[k], fmt::format("{}[{}]", rowPath, k), min, max));
        }
        return values;
      });
}

std::vector<int64_t> ConfigNode::getIntList(const std::string& key,
                                            const std::vector<int64_t>& fallback, int64_t min,
                                            int64_t max) const {
  record(key, "list of integers", listText(fallback), integerRange(min, max));
  used_->insert(key);
  if (!has(key)) return fallback;
  const YAML::Node list = at(key);
  return readList<int64_t>(*this, list, key, [&](const YAML::Node& item, std::size_t i) {
    const std::string itemPath = fmt::format("{}[{}]", pathOf(key), i);
    long long result = 0;
    if (const std::string message = notDecimalMessage(item); !message.empty())
      failAt(item, itemPath, message);
    if (!readDecimalInteger(item, result)) {
      failAt(item, itemPath, "expected an integer, got " + describe(item));
    }
    if (result < min || result > max) {
      failAt(item, itemPath,
             fmt::format("{} is out of range: must be in [{}, {}]", result, min, max));
    }
    return static_cast<int64_t>(result);
  });
}

std::vector<std::string> ConfigNode::getStringList(const std::string& key,
                                                   const std::vector<std::string>& fallback) const {
  record(key, "list of strings", listText(fallback));
  used_->insert(key);
  if (!has(key)) return fallback;
  const YAML::Node list = at(key);
  return readList<std::string>(*this, list, key, [&](const YAML::Node& item, std::size_t i) {
    if (!item.IsScalar())
      failAt(item, fmt::format("{}[{}]", pathOf(key), i),
             "expected a string, got " + describe(item));
    return item.as<std::string>();
  });
}

ConfigNode ConfigNode::child(const std::string& key) const {
  used_->insert(key);
  ConfigNode result(has(key) ? at(key) : YAML::Node(YAML::NodeType::Null), file_, pathOf(key));
  result.recording_ = recording_;
  return result;
}

std::vector<ConfigNode> ConfigNode::children(const std::string& key) const {
  used_->insert(key);
  if (!has(key)) return {};
  const YAML::Node list = at(key);
  if (!list.IsSequence()) fail(key, "expected a list, got " + describe(list));
  std::vector<ConfigNode> result;
  for (std::size_t i = 0; i < list.size(); ++i) {
    result.emplace_back(list[i], file_, fmt::format("{}[{}]", pathOf(key), i));
    result.back().recording_ = recording_;
  }
  return result;
}

void ConfigNode::finish(const std::vector<std::string>& alsoValid) const {
  std::vector<std::string> valid(used_->begin(), used_->end());
  valid.insert(valid.end(), alsoValid.begin(), alsoValid.end());
  // A key may be both read and passed in alsoValid; list it once.
  std::sort(valid.begin(), valid.end());
  valid.erase(std::unique(valid.begin(), valid.end()), valid.end());
  for (const auto& entry : node_) {
    const std::string key = entry.first.Scalar();
    if (std::find(valid.begin(), valid.end(), key) != valid.end()) continue;
    std::string message = "unknown key";
    const std::string suggestion = closestMatch(key, valid);
    if (!suggestion.empty()) {
      message += fmt::format(" '{}' (did you mean '{}'?)", key, suggestion);
    } else {
      message += fmt::format(" '{}'; valid keys here: {}", key, fmt::join(valid, ", "));
    }
    failAt(entry.first, pathOf(key), message);
  }
}

bool KindKeys::uses(const std::string& key) const {
  for (const auto& [name, kinds] : table_)
    if (name == key) return std::find(kinds.begin(), kinds.end(), kind_) != kinds.end();
  throw std::logic_error("KindKeys: no kinds listed for '" + key + "'");
}

void KindKeys::refuseOthers(const ConfigNode& node) const {
  for (const auto& [key, kinds] : table_) {
    if (!node.has(key) || uses(key)) continue;
    std::string names;
    for (const auto& k : kinds) names += (names.empty() ? "'kind: " : " or 'kind: ") + k + "'";
    node.fail(key, fmt::format("is used only with {} (kind is '{}')", names, kind_));
  }
}

}  // namespace fulcrum
