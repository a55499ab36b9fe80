#include "framework/sweep.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "framework/search.h"

namespace fulcrum {

namespace {

constexpr std::size_t kMaxTrials = 1'000'000;

/// One axis of the grid: one key, or a zip group of keys whose values go
/// together (values[k][i] is key k's value at position i).
struct Axis {
  std::vector<std::string> keys;
  std::vector<std::vector<YAML::Node>> values;
  std::string file;  // the experiment file, or "--sweep TEXT"
  bool zipped = false;
  std::size_t size() const { return values.empty() ? 0 : values.front().size(); }
};

int oneBased(int zeroBased) { return zeroBased < 0 ? 0 : zeroBased + 1; }

std::string flow(const YAML::Node& node) {
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

/// Checks a sweep key path: plain dotted components, not a sweep key itself.
void checkKeyPath(const ConfigNode& where, const std::string& key, const std::string& path) {
  std::stringstream stream(path);
  std::string part;
  bool bad = path.empty() || path.front() == '.' || path.back() == '.';
  while (std::getline(stream, part, '.')) bad = bad || part.empty();
  if (bad) where.fail(key, fmt::format("'{}' is not a key path (e.g. train.optimizer.lr)", path));
  if (std::find(kSweepKeys.begin(), kSweepKeys.end(), path) != kSweepKeys.end()) {
    where.fail(key, fmt::format("'{}' cannot be swept", path));
  }
}

/// `sweep: {cross_validation: k}` (or `{folds: k, seed: s}`): one axis over
/// the key `cross_validation` whose values are the k folds.
Axis crossValidationAxis(const ConfigNode& block, const std::string& file) {
  const YAML::Node value = block.yaml()["cross_validation"];
  int64_t folds = 0, seed = -1;
  if (value.IsMap()) {
    const ConfigNode node(value, block.file(), block.pathOf("cross_validation"));
    folds = node.requireInt("folds", 2, 1000);
    seed = node.getInt("seed", -1, 0, int64_t{1} << 53);
    node.finish();
  } else {
    folds = block.getInt("cross_validation", 0, 2, 1000);
  }
  Axis axis{{"cross_validation"}, {{}}, file, false};
  for (int64_t fold = 0; fold < folds; ++fold) {
    YAML::Node point;
    point["folds"] = folds;
    point["fold"] = fold;
    if (seed >= 0) point["seed"] = seed;
    axis.values[0].push_back(point);
  }
  return axis;
}

/// The values of one axis written in the file: `[v1, v2]` or `{values: [v1, v2]}`.
std::vector<YAML::Node> axisValues(const ConfigNode& block, const std::string& key) {
  const YAML::Node value = block.yaml()[key];
  YAML::Node list = value;
  if (value.IsMap()) {
    const ConfigNode wandb(value, block.file(), block.pathOf(key));
    for (const auto& inner : wandb.keys()) {
      if (inner != "values") {
        wandb.fail(inner,
                   fmt::format("unknown key '{}'; an axis is a list or {{values: [...]}}", inner));
      }
    }
    if (!wandb.has("values")) block.fail(key, "expected {values: [...]}: 'values' is missing");
    list = value["values"];
    if (!list.IsSequence()) wandb.fail("values", "expected a list of values, e.g. values: [1, 2]");
  } else if (!value.IsSequence()) {
    block.fail(key,
               fmt::format("expected a list of values (e.g. [1, 2]) or {{values: [...]}}, got {}",
                           value.IsScalar() ? "'" + value.Scalar() + "'" : "nothing"));
  }
  if (list.size() == 0)
    block.fail(key, "the list of values is empty: an axis needs at least one value");
  std::vector<YAML::Node> result;
  for (std::size_t i = 0; i < list.size(); ++i) result.push_back(list[i]);
  return result;
}

YAML::Node loadRoot(const std::string& text, const std::string& file) {
  const YAML::Node root = parseYaml(text, file);  // located syntax errors, one document
  if (!root.IsDefined() || root.IsNull() || !root.IsMap()) {
    parseExperiment(text, file);  // throws the empty-file or not-a-mapping error
  }
  return root;
}

/// The `zip:` groups, each one axis; list-style groups take (and remove) `sweep:` axes.
void readZip(const ConfigNode& top, const YAML::Node& zip, std::vector<Axis>& grid,
             std::vector<Axis>& zipped) {
  if (!zip.IsSequence()) top.fail("zip", "expected a list of groups of keys that vary together");
  for (std::size_t g = 0; g < zip.size(); ++g) {
    const YAML::Node group = zip[g];
    const std::string groupPath = fmt::format("zip[{}]", g);
    const ConfigError groupError(top.file(), oneBased(group.Mark().line),
                                 oneBased(group.Mark().column), groupPath, "");
    auto failGroup = [&](const std::string& message) -> void {
      throw ConfigError(groupError.file(), groupError.line(), groupError.column(), groupPath,
                        message);
    };
    Axis axis;
    axis.file = top.file();
    axis.zipped = true;
    if (group.IsMap()) {
      const ConfigNode block(group, top.file(), groupPath);
      for (const auto& key : block.keys()) {
        checkKeyPath(block, key, key);
        axis.keys.push_back(key);
        axis.values.push_back(axisValues(block, key));
      }
    } else if (group.IsSequence()) {
      for (std::size_t k = 0; k < group.size(); ++k) {
        const std::string name = group[k].IsScalar() ? group[k].Scalar() : "";
        auto found = std::find_if(grid.begin(), grid.end(),
                                  [&](const Axis& a) { return a.keys[0] == name; });
        if (found == grid.end()) {
          throw ConfigError(
              top.file(), oneBased(group[k].Mark().line), oneBased(group[k].Mark().column),
              fmt::format("{}[{}]", groupPath, k),
              fmt::format("'{}' is not an axis of 'sweep:' (a list-style zip group names "
                          "sweep axes; or write {{key: [values], ...}})",
                          group[k].IsScalar() ? name : flow(group[k])));
        }
        axis.keys.push_back(found->keys[0]);
        axis.values.push_back(found->values[0]);
        grid.erase(found);
      }
    } else {
      failGroup("expected a group: {key.path: [values], ...} or [sweep axis names]");
    }
    if (axis.keys.empty()) failGroup("an empty group");
    for (std::size_t k = 1; k < axis.keys.size(); ++k) {
      if (axis.values[k].size() != axis.values[0].size()) {
        failGroup(
            fmt::format("keys that vary together need lists of equal length: '{}' has {} values, "
                        "'{}' has {}",
                        axis.keys[0], axis.values[0].size(), axis.keys[k], axis.values[k].size()));
      }
    }
    zipped.push_back(axis);
  }
}

/// Applies a `--sweep key=v1,v2` argument: replaces the axis of that key or adds one.
void applySweepArgument(const std::string& argument, std::vector<Axis>& axes,
                        std::vector<int64_t>& seeds, std::vector<YAML::Node>& seedNodes,
                        std::string& seedsFile) {
  const std::string where = "--sweep " + argument;
  const auto equals = argument.find('=');
  if (equals == std::string::npos || equals == 0)
    throw ConfigError(where, 0, 0, "", "expected KEY.PATH=V1,V2,...");
  const std::string key = argument.substr(0, equals);
  std::vector<YAML::Node> values;
  for (const auto& item : splitSweepValues(argument.substr(equals + 1))) {
    try {
      values.push_back(YAML::Load(item));
    } catch (const YAML::Exception& error) {
      throw ConfigError(where, 0, 0, key,
                        fmt::format("value '{}' is not valid YAML: {}", item, error.msg));
    }
  }
  if (values.empty()) throw ConfigError(where, 0, 0, key, "no values: an axis needs at least one");
  for (const auto& value : values) {
    if (value.IsNull()) {
      throw ConfigError(where, 0, 0, key,
                        "an empty (null) value: every value of an axis must be written out");
    }
  }
  if (key == "seeds") {
    seeds.clear();
    seedNodes.clear();
    for (const auto& value : values) {
      long long seed = -1;
      if (!readDecimalInteger(value, seed) || seed < 0) {
        throw ConfigError(
            where, 0, 0, key,
            fmt::format("'{}' is not a seed (an integer >= 0 in decimal digits)", flow(value)));
      }
      seeds.push_back(seed);
      seedNodes.push_back(value);
    }
    seedsFile = where;
    return;
  }
  std::stringstream stream(key);
  std::string part;
  bool bad = key.back() == '.';
  while (std::getline(stream, part, '.')) bad = bad || part.empty();
  if (bad) throw ConfigError(where, 0, 0, key, "empty component in key path");
  for (auto& axis : axes) {
    const auto found = std::find(axis.keys.begin(), axis.keys.end(), key);
    if (found == axis.keys.end()) continue;
    if (axis.zipped) {
      throw ConfigError(where, 0, 0, key,
                        "this key varies with others in 'zip:'; change it in the file");
    }
    axis.values = {values};
    axis.file = where;
    return;
  }
  axes.push_back(Axis{{key}, {values}, where, false});
}

void canonical(const YAML::Node& node, const std::string& path, std::string& out) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      std::map<std::string, YAML::Node> sorted;
      for (const auto& entry : node) sorted[entry.first.Scalar()] = entry.second;
      out += '{';
      for (const auto& [key, value] : sorted) {
        const std::string child = path.empty() ? key : path + "." + key;
        // Where results go, how many threads compute them and how often
        // the trial checkpoints change no result.
        if (child == "train.threads" || child == "output" || child == "train.checkpoint_every")
          continue;
        out += fmt::format("{:?}:", key);
        canonical(value, child, out);
        out += ',';
      }
      out += '}';
      return;
    }
    case YAML::NodeType::Sequence:
      out += '[';
      for (std::size_t i = 0; i < node.size(); ++i) {
        canonical(node[i], path + "[]", out);
        out += ',';
      }
      out += ']';
      return;
    case YAML::NodeType::Scalar: {
      long long integer = 0;
      double number = 0.0;
      if (YAML::convert<long long>::decode(node, integer)) {
        out += std::to_string(integer);
      } else if (YAML::convert<double>::decode(node, number) && std::isfinite(number)) {
        out += number == std::floor(number) && std::abs(number) < 1e15
                   ? std::to_string(static_cast<long long>(number))
                   : fmt::format("{:.17g}", number);
      } else {
        out += fmt::format("{:?}", node.Scalar());
      }
      return;
    }
    default:
      out += "~";
  }
}

}  // namespace

void TrialSpec::rethrow(const ConfigError& error) const {
  if (error.file().rfind("--set ", 0) == 0) {
    const std::string text = error.file().substr(6);
    for (const auto& origin : origins) {
      if (origin.override == text) {
        throw ConfigError(origin.file, origin.line, origin.column, error.keyPath(),
                          error.message());
      }
    }
    throw error;
  }
  for (auto it = origins.rbegin(); it != origins.rend(); ++it) {
    if (isInsidePath(error.keyPath(), it->keyPath)) {
      throw ConfigError(it->file, it->line, it->column, error.keyPath(), error.message());
    }
  }
  throw error;
}

std::vector<std::string> splitSweepValues(const std::string& text) {
  std::vector<std::string> items;
  std::string current;
  int depth = 0;
  char quote = 0;
  for (char c : text) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      --depth;
    } else if (c == ',' && depth == 0) {
      items.push_back(trim(current));
      current.clear();
      continue;
    }
    current += c;
  }
  items.push_back(trim(current));
  items.erase(std::remove(items.begin(), items.end(), std::string()), items.end());
  return items;
}

uint64_t fnv1a64(const std::string& text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::string canonicalConfig(const YAML::Node& root) {
  std::string out;
  canonical(root, "", out);
  return out;
}

std::string trialId(const YAML::Node& root) {
  return fmt::format("{:016x}", fnv1a64(canonicalConfig(root))).substr(0, 12);
}

std::vector<TrialSpec> planSweepText(const std::string& text, const std::string& file,
                                     const SweepOptions& options) {
  const YAML::Node root = loadRoot(text, file);
  const ConfigNode top(root, file, "");

  std::vector<Axis> grid;
  if (top.has("sweep")) {
    const ConfigNode block = top.child("sweep");
    if (block.keys().empty()) top.fail("sweep", "an empty sweep: give at least one key: [values]");
    for (const auto& key : block.keys()) {
      if (key == "cross_validation") {
        grid.push_back(crossValidationAxis(block, file));
        continue;
      }
      if (key == "halving") continue;  // how the trials run (framework/halving.h), not an axis
      if (key == "search") {           // one zipped axis: the sampled points
        const ConfigNode node = block.child("search");
        const SearchSpec search = readSearchSpec(node);
        Axis axis{{}, samplePoints(search), file, true};
        const ConfigNode space = node.child("space");
        for (const SearchDimension& dimension : search.space) {
          checkKeyPath(space, dimension.key, dimension.key);
          axis.keys.push_back(dimension.key);
        }
        grid.push_back(axis);
        continue;
      }
      checkKeyPath(block, key, key);
      grid.push_back(Axis{{key}, {axisValues(block, key)}, file, false});
    }
  } else if (root["sweep"].IsDefined()) {
    top.fail("sweep", "an empty sweep: give at least one key: [values]");
  }
  std::vector<Axis> zipped;
  if (top.has("zip")) readZip(top, root["zip"], grid, zipped);
  std::vector<Axis> axes = grid;
  axes.insert(axes.end(), zipped.begin(), zipped.end());

  std::vector<int64_t> seeds;
  std::vector<YAML::Node> seedNodes;
  std::string seedsFile = file;
  if (root["seeds"].IsDefined()) {
    seeds = top.getIntList("seeds", {}, 0, int64_t{1} << 53);
    if (seeds.empty()) top.fail("seeds", "the list of seeds is empty");
    for (std::size_t i = 0; i < seeds.size(); ++i) seedNodes.push_back(root["seeds"][i]);
  }
  for (const auto& argument : options.sweeps)
    applySweepArgument(argument, axes, seeds, seedNodes, seedsFile);

  // Every key path is swept by one axis only.
  std::map<std::string, std::string> owner;
  for (const auto& axis : axes) {
    for (const auto& key : axis.keys) {
      if (!seeds.empty() && key == "seed") {
        throw ConfigError(axis.file, 0, 0, key,
                          "'seed' is swept by 'seeds:'; use one or the other");
      }
      for (const auto& [other, where] : owner) {
        if (isInsidePath(key, other) || isInsidePath(other, key)) {
          throw ConfigError(
              axis.file, 0, 0, key,
              fmt::format("overlaps the axis '{}' ({}); a key is swept by one axis only", other,
                          where));
        }
      }
      owner[key] = axis.file;
    }
  }

  std::size_t count = std::max<std::size_t>(1, seeds.size());
  for (const auto& axis : axes) {
    count *= axis.size();
    if (count > kMaxTrials) {
      throw ConfigError(file, 0, 0, "sweep", fmt::format("more than {} trials", kMaxTrials));
    }
  }

  std::vector<TrialSpec::Origin> baseOrigins;
  for (const auto& set : options.sets) {
    baseOrigins.push_back({set, set.substr(0, set.find('=')), "--set " + set, 0, 0});
  }

  std::vector<TrialSpec> trials;
  std::map<std::string, std::size_t> ids;
  std::vector<std::size_t> position(axes.size(), 0);
  const std::size_t seedCount = std::max<std::size_t>(1, seeds.size());
  for (std::size_t index = 0; index < count; ++index) {
    // Mixed-radix digits of the point: the first axis outermost, seeds innermost.
    std::size_t rest = index / seedCount;
    for (std::size_t a = axes.size(); a-- > 0;) {
      position[a] = rest % axes[a].size();
      rest /= axes[a].size();
    }
    TrialSpec trial;
    trial.index = index;
    trial.overrides = options.sets;
    trial.origins = baseOrigins;
    for (std::size_t a = 0; a < axes.size(); ++a) {
      for (std::size_t k = 0; k < axes[a].keys.size(); ++k) {
        const YAML::Node& value = axes[a].values[k][position[a]];
        const std::string text_ = flow(value);
        const std::string override = axes[a].keys[k] + "=" + text_;
        const bool inFile = axes[a].file == file;
        trial.overrides.push_back(override);
        trial.values.emplace_back(axes[a].keys[k], text_);
        trial.origins.push_back({override, axes[a].keys[k], axes[a].file,
                                 inFile ? oneBased(value.Mark().line) : 0,
                                 inFile ? oneBased(value.Mark().column) : 0});
      }
    }
    if (!seeds.empty()) {
      const std::size_t s = index % seedCount;
      const std::string override = fmt::format("seed={}", seeds[s]);
      const bool inFile = seedsFile == file;
      trial.overrides.push_back(override);
      trial.origins.push_back({override, "seed", seedsFile,
                               inFile ? oneBased(seedNodes[s].Mark().line) : 0,
                               inFile ? oneBased(seedNodes[s].Mark().column) : 0});
    }
    try {
      trial.spec = parseExperiment(text, file, trial.overrides);
    } catch (const ConfigError& error) {
      trial.rethrow(error);
    }
    trial.id = trialId(trial.spec.root);
    trial.resultPath = (std::filesystem::path(trial.spec.output) /
                        fmt::format("{}-{}-seed{}-{}.h5", trial.spec.name, trial.spec.strategyName,
                                    trial.spec.seed, trial.id))
                           .string();
    const auto [earlier, inserted] = ids.emplace(trial.id, index);
    if (!inserted) {
      throw ConfigError(file, 0, 0, "sweep",
                        fmt::format("trials {} and {} have the same configuration (id {}); "
                                    "remove the repeated value",
                                    earlier->second, index, trial.id));
    }
    trials.push_back(std::move(trial));
  }
  return trials;
}

std::vector<TrialSpec> planSweep(const std::string& path, const SweepOptions& options) {
  return planSweepText(readExperimentFile(path), path, options);
}

}  // namespace fulcrum
