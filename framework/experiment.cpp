#include "framework/experiment.h"

#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "framework/extension_registry.h"
#include "framework/regular_file.h"

namespace fulcrum {

namespace {

const std::vector<std::string> kDataKinds = {"multi_fashion", "gradnorm_toy"};
const std::vector<std::string> kOptimizers = {"adam", "adamw", "sgd", "rmsprop", "adagrad"};
constexpr int64_t kMaxExamples = 100'000'000;
constexpr int64_t kMaxWidth = 1'000'000;

std::vector<std::string> dataKinds() {
  std::vector<std::string> kinds = kDataKinds;
  for (const auto& row : datasetTable()) kinds.push_back(row.name);
  return kinds;
}

// The names of the task-kind table (framework/task.h), for validation.
const std::vector<std::string>& taskKindNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& row : taskKindTable()) out.push_back(row.name);
    return out;
  }();
  return names;
}

// `text` is one of taskKindNames(), checked by the caller's getString.
TaskKind parseTaskKind(const std::string& text) {
  for (const auto& row : taskKindTable()) {
    if (row.name == text) return row.kind;
  }
  throw std::invalid_argument("parseTaskKind: unknown kind '" + text + "'");
}

// The 1-based line and column of a tab in the leading whitespace of the
// nearest line at or before `lastLine`, or {0, 0}. yaml-cpp reports such a
// tab as "illegal map value" or the like, which does not point at the tab.
std::pair<int, int> tabIndentAtOrBefore(const std::string& text, int lastLine) {
  std::pair<int, int> found{0, 0};
  std::istringstream in(text);
  std::string content;
  for (int number = 1; number <= lastLine && std::getline(in, content); ++number) {
    const std::size_t indentEnd = content.find_first_not_of(" \t");
    const std::size_t tab = content.find('\t');
    if (tab != std::string::npos && (indentEnd == std::string::npos || tab < indentEnd)) {
      found = {number, static_cast<int>(tab) + 1};
    }
  }
  return found;
}

struct Override {
  std::string text;  // as typed: key.path=value
  std::string keyPath;
};

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream stream(path);
  std::string part;
  while (std::getline(stream, part, '.')) parts.push_back(part);
  return parts;
}

// Applies `text` to `root`; the key paths it creates (absent before it) go
// into `created`.
Override applyOverride(YAML::Node& root, const std::string& text, std::set<std::string>& created) {
  const auto equals = text.find('=');
  if (equals == std::string::npos || equals == 0) {
    throw ConfigError("--set " + text, 0, 0, "", "expected KEY.PATH=VALUE");
  }
  Override result{text, text.substr(0, equals)};
  const std::vector<std::string> parts = splitPath(result.keyPath);
  if (std::any_of(parts.begin(), parts.end(), [](const std::string& p) { return p.empty(); })) {
    throw ConfigError("--set " + text, 0, 0, result.keyPath, "empty component in key path");
  }
  YAML::Node value;
  try {
    value = YAML::Load(text.substr(equals + 1));
  } catch (const YAML::Exception& error) {
    throw ConfigError("--set " + text, 0, 0, result.keyPath,
                      "value is not valid YAML: " + error.msg);
  }
  if (value.IsNull()) {
    throw ConfigError("--set " + text, 0, 0, result.keyPath,
                      "no value (empty or null): to keep the default, leave the key out; to "
                      "give a value, write it after '='");
  }
  // Another strategy's name brings that strategy with its own defaults: the
  // file's options belong to the file's strategy (`--strategy NAME` is this).
  if (result.keyPath == "strategy.name" && value.IsScalar()) {
    const YAML::Node& constRoot = root;
    const YAML::Node strategy = constRoot["strategy"];
    const bool same = strategy.IsDefined() && strategy.IsMap() && strategy["name"].IsDefined() &&
                      strategy["name"].IsScalar() && strategy["name"].Scalar() == value.Scalar();
    if (!same) root["strategy"] = YAML::Node(YAML::NodeType::Map);
  }
  YAML::Node node = root;
  std::string path;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    path += (i ? "." : "") + parts[i];
    YAML::Node next = node[parts[i]];
    if (!next.IsDefined() || next.IsNull()) {
      created.insert(path);
      node[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next.reset(node[parts[i]]);
    } else if (!next.IsMap()) {
      throw ConfigError("--set " + text, 0, 0, result.keyPath,
                        fmt::format("cannot set a key inside '{}': it is not a mapping", parts[i]));
    }
    node.reset(next);
  }
  const YAML::Node& constNode = node;
  if (!constNode[parts.back()].IsDefined()) created.insert(result.keyPath);
  node[parts.back()] = value;
  return result;
}

// An error in a key that a --set override replaced is reported against the
// override, since the file's line numbers do not apply to it; so is an error
// at a key the file lacks that an override created on its way to a nested
// key (`--set train.optimzer.lr=1`: 'optimzer' is unknown).
[[noreturn]] void rethrowForOverrides(const ConfigError& error,
                                      const std::vector<Override>& overrides,
                                      const std::set<std::string>& created) {
  const std::string& key = error.keyPath();
  for (auto it = overrides.rbegin(); it != overrides.rend(); ++it) {
    if (isInsidePath(key, it->keyPath))
      throw ConfigError("--set " + it->text, 0, 0, key, error.message());
  }
  if (created.count(key) > 0) {
    for (auto it = overrides.rbegin(); it != overrides.rend(); ++it) {
      if (isInsidePath(it->keyPath, key))
        throw ConfigError("--set " + it->text, 0, 0, key, error.message());
    }
  }
  throw error;
}

void readData(const ConfigNode& node, DataSpec& data) {
  data.kind = node.getString("kind", data.kind, dataKinds());
  if (findDataset(data.kind) != nullptr) {
    data.options = node;  // read by the dataset's hook in readTasks, finished there
    return;
  }
  if (data.kind == "multi_fashion") {
    MultiFashionOptions& o = data.multiFashion;
    o.directory = node.getString("directory", o.directory);
    o.trainSize = node.getInt("train_size", o.trainSize, 1, kMaxExamples);
    o.valSize = node.getInt("val_size", o.valSize, 1, kMaxExamples);
    o.testSize = node.getInt("test_size", o.testSize, 1, kMaxExamples);
    o.valFraction = node.getDouble("val_fraction", o.valFraction, 0.001, 0.999);
    o.maxShift = node.getInt("max_shift", o.maxShift, 0, 4);
  } else {
    GradNormToyOptions& o = data.gradNormToy;
    o.tasks = node.getInt("tasks", o.tasks, 1, 1000);
    o.sigmas = node.getDoubleList("sigmas", o.sigmas, 1e-6, 1e6);
    if (!node.has("tasks") && !o.sigmas.empty()) o.tasks = static_cast<int64_t>(o.sigmas.size());
    if (!o.sigmas.empty() && static_cast<int64_t>(o.sigmas.size()) != o.tasks) {
      node.fail("sigmas", fmt::format("expected {} values (one per task, data.tasks = {}), got {}",
                                      o.tasks, o.tasks, o.sigmas.size()));
    }
    o.maxSigma = node.getDouble("max_sigma", o.maxSigma, 1.0, 1e6);
    o.inputDim = node.getInt("input_dim", o.inputDim, 1, kMaxWidth);
    o.outputDim = node.getInt("output_dim", o.outputDim, 1, kMaxWidth);
    o.bStd = node.getDouble("b_std", o.bStd, 0.0, 1e6);
    o.epsStd = node.getDouble("eps_std", o.epsStd, 0.0, 1e6);
    o.trainSize = node.getInt("train_size", o.trainSize, 1, kMaxExamples);
    o.valSize = node.getInt("val_size", o.valSize, 1, kMaxExamples);
    o.testSize = node.getInt("test_size", o.testSize, 1, kMaxExamples);
  }
  node.finish();
}

// A registered dataset: the `tasks:` list as written (kind default
// regression, outputs default 1), then the dataset's hook decides.
void readRegisteredTasks(const ConfigNode& top, ExperimentSpec& spec, const DatasetInfo& dataset) {
  std::vector<TaskSpec> declared;
  for (const ConfigNode& node : top.children("tasks")) {
    TaskSpec task;
    task.name = node.requireString("name");
    if (!isPlainName(task.name)) {
      node.fail("name",
                fmt::format("'{}' is not a plain name (letters, digits, _ - .)", task.name));
    }
    for (const auto& earlier : declared) {
      if (earlier.name == task.name)
        node.fail("name", fmt::format("duplicate task name '{}'", task.name));
    }
    task.kind = parseTaskKind(node.getString("kind", "regression", taskKindNames()));
    const TaskKindInfo& kind = taskKindInfo(task.kind);
    if (kind.outputsRequired && !node.has("outputs")) {
      node.fail("", fmt::format("a {} task needs 'outputs': its number of classes (>= {})",
                                kind.name, kind.minOutputs));
    }
    if (kind.fixedOutputs > 0) {
      task.outputs =
          node.getInt("outputs", kind.fixedOutputs, kind.fixedOutputs, kind.fixedOutputs);
    } else {
      task.outputs = node.getInt("outputs", kind.minOutputs, kind.minOutputs, kMaxWidth);
    }
    node.finish();
    declared.push_back(task);
  }
  spec.tasks = dataset.tasks(spec.data.options, declared, datasetContext(spec));
  spec.data.options.finish();
  if (spec.tasks.empty())
    top.fail("data", fmt::format("data kind '{}' defines no task", spec.data.kind));
}

void readTasks(const ConfigNode& top, ExperimentSpec& spec) {
  if (const DatasetInfo* registered = findDataset(spec.data.kind)) {
    readRegisteredTasks(top, spec, *registered);
    return;
  }
  const std::vector<TaskSpec> defined = datasetTasks(spec.data);
  if (!top.has("tasks")) {
    spec.tasks = defined;
    top.children("tasks");
    return;
  }
  const std::vector<ConfigNode> nodes = top.children("tasks");
  std::vector<std::string> definedNames;
  for (const auto& task : defined) definedNames.push_back(task.name);
  if (nodes.size() != defined.size()) {
    top.fail("tasks",
             fmt::format("data kind '{}' defines {} tasks ({}), the list has {}", spec.data.kind,
                         defined.size(), fmt::join(definedNames, ", "), nodes.size()));
  }
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const ConfigNode& node = nodes[i];
    TaskSpec task;
    task.name = node.requireString("name");
    if (!isPlainName(task.name)) {
      node.fail("name",
                fmt::format("'{}' is not a plain name (letters, digits, _ - .)", task.name));
    }
    for (const auto& earlier : spec.tasks) {
      if (earlier.name == task.name)
        node.fail("name", fmt::format("duplicate task name '{}'", task.name));
    }
    // Tasks are positional: a name of another of the dataset's tasks here
    // would store that task's curves under this one's name.
    for (std::size_t j = 0; j < defined.size(); ++j) {
      if (j != i && task.name == defined[j].name) {
        node.fail("name", fmt::format("'{}' is task {} of '{}', not task {} (which is '{}'): "
                                      "tasks: follows the dataset's order ({}); names may "
                                      "change, the order may not",
                                      task.name, j, spec.data.kind, i, defined[i].name,
                                      fmt::join(definedNames, ", ")));
      }
    }
    task.kind = parseTaskKind(node.getString("kind", toString(defined[i].kind), taskKindNames()));
    if (task.kind != defined[i].kind) {
      node.fail("kind", fmt::format("task {} of '{}' is a {} task", i, spec.data.kind,
                                    toString(defined[i].kind)));
    }
    task.outputs = node.getInt("outputs", defined[i].outputs, 1, kMaxWidth);
    if (task.outputs != defined[i].outputs) {
      node.fail("outputs", fmt::format("task {} of '{}' has {} outputs", i, spec.data.kind,
                                       defined[i].outputs));
    }
    node.finish();
    spec.tasks.push_back(task);
  }
}

}  // namespace

OptimizerSpec readOptimizerSpec(const ConfigNode& optimizer) {
  OptimizerSpec o;
  o.kind = optimizer.getString("kind", o.kind, kOptimizers);
  const std::string& kind = o.kind;
  // The keys of each kind: the table is the one place that says.
  const KindKeys own(kind, {{"momentum", {"sgd", "rmsprop"}},
                            {"nesterov", {"sgd"}},
                            {"betas", {"adam", "adamw"}},
                            {"amsgrad", {"adam", "adamw"}},
                            {"eps", {"adam", "adamw", "rmsprop", "adagrad"}},
                            {"alpha", {"rmsprop"}},
                            {"centered", {"rmsprop"}},
                            {"lr_decay", {"adagrad"}},
                            {"initial_accumulator_value", {"adagrad"}}});
  own.refuseOthers(optimizer);
  auto uses = [&own](const std::string& key) { return own.uses(key); };
  o.lr = optimizer.getDouble("lr", o.lr, 1e-12, 1e3);
  // adamw too: fulcrum's 0, not LibTorch's (and PyTorch's) 0.01.
  o.weightDecay = optimizer.getDouble("weight_decay", 0.0, 0.0, 1e3);
  if (uses("momentum")) o.momentum = optimizer.getDouble("momentum", 0.0, 0.0, 0.999999);
  if (uses("nesterov")) {
    o.nesterov = optimizer.getBool("nesterov", false);
    if (o.nesterov && o.momentum == 0.0)
      optimizer.fail("nesterov",
                     "needs momentum > 0 (Nesterov momentum without momentum is plain sgd)");
  }
  if (uses("betas")) {
    const auto betas = optimizer.getDoubleList("betas", {o.beta1, o.beta2}, 0.0, 0.999999);
    if (betas.size() != 2)
      optimizer.fail("betas",
                     fmt::format("needs two numbers [beta1, beta2], got {}", betas.size()));
    o.beta1 = betas[0];
    o.beta2 = betas[1];
  }
  if (uses("amsgrad")) o.amsgrad = optimizer.getBool("amsgrad", false);
  if (uses("eps"))
    o.eps = optimizer.getDouble("eps", kind == "adagrad" ? 1e-10 : 1e-8, 1e-300, 1.0);
  if (uses("alpha")) o.alpha = optimizer.getDouble("alpha", o.alpha, 0.0, 0.999999);
  if (uses("centered")) o.centered = optimizer.getBool("centered", false);
  if (uses("lr_decay")) o.lrDecay = optimizer.getDouble("lr_decay", 0.0, 0.0, 1e6);
  if (uses("initial_accumulator_value"))
    o.initialAccumulator = optimizer.getDouble("initial_accumulator_value", 0.0, 0.0, 1e6);
  optimizer.finish();
  return o;
}

namespace {

ClipSpec readClip(const ConfigNode& node) {
  ClipSpec clip;
  if (node.has("norm") && node.has("value"))
    node.fail("value", "clip by 'norm' or by 'value', not both");
  clip.maxNorm = node.getDouble("norm", 0.0, 1e-12, 1e300);
  clip.maxValue = node.getDouble("value", 0.0, 1e-12, 1e300);
  node.finish();
  return clip;
}

RegularizationSpec readRegularization(const ConfigNode& node) {
  RegularizationSpec r;
  const ConfigNode shared = node.child("shared"), tasks = node.child("tasks");
  r.sharedL1 = shared.getDouble("l1", 0.0, 0.0, 1e6);
  r.sharedL2 = shared.getDouble("l2", 0.0, 0.0, 1e6);
  r.tasksL1 = tasks.getDouble("l1", 0.0, 0.0, 1e6);
  r.tasksL2 = tasks.getDouble("l2", 0.0, 0.0, 1e6);
  shared.finish();
  tasks.finish();
  node.finish();
  return r;
}

// `save_model: final|best|both`, or `{which: final|best|both, metric: ...}`.
SaveModelSpec readSaveModel(const ConfigNode& train, const TrainSpec& spec,
                            const std::vector<TaskSpec>& tasks) {
  SaveModelSpec save;
  const std::vector<std::string> kinds = {"none", "final", "best", "both"};
  // Without a metric of its own: early stopping's (with its mode), else the loss.
  auto criterionOf = [&](const ConfigNode& node) {
    if (!node.has("metric") && !node.has("mode") && spec.earlyStopping.enabled)
      return spec.earlyStopping.criterion;
    return readCriterion(node, "metric", "loss", tasks);
  };
  std::string which = "none";
  if (!train.has("save_model") || train.yaml()["save_model"].IsScalar()) {
    which = train.getString("save_model", which, kinds);
    save.criterion =
        criterionOf(ConfigNode(YAML::Node(), train.file(), train.pathOf("save_model")));
  } else {
    const ConfigNode node = train.child("save_model");
    which = node.getString("which", "both", kinds);
    save.criterion = criterionOf(node);
    node.finish();
  }
  save.final = which == "final" || which == "both";
  save.best = which == "best" || which == "both";
  return save;
}

void readTrain(const ConfigNode& node, TrainSpec& train, const std::vector<TaskSpec>& tasks) {
  train.epochs = node.getInt("epochs", train.epochs, 1, 1'000'000);
  train.batchSize = node.getInt("batch_size", train.batchSize, 1, 1'000'000);
  train.evalBatchSize = node.getInt("eval_batch_size", train.evalBatchSize, 1, 1'000'000);
  train.maxStepsPerEpoch =
      node.getInt("max_steps_per_epoch", train.maxStepsPerEpoch, 0, 1'000'000'000);
  train.threads = node.getInt("threads", train.threads, 0, 1024);
  train.logGradientsEvery =
      node.getInt("log_gradients_every", train.logGradientsEvery, 0, 1'000'000'000);
  train.onNan = node.getString("on_nan", train.onNan, {"fail", "skip_step"});
  train.checkpointEvery = node.getInt("checkpoint_every", train.checkpointEvery, 0, 1'000'000);
  train.optimizer = readOptimizerSpec(node.child("optimizer"));
  train.scheduler = readScheduleSpec(node.child("scheduler"), tasks);
  train.clip = readClip(node.child("clip"));
  train.regularization = readRegularization(node.child("regularization"));
  train.earlyStopping = readEarlyStoppingSpec(node.child("early_stopping"), tasks);
  train.saveModel = readSaveModel(node, train, tasks);
  node.finish();
}

std::string formatBytes(double bytes) {
  const char* units[] = {"bytes", "KB", "MB", "GB", "TB", "PB", "EB"};
  int unit = 0;
  while (bytes >= 1000.0 && unit < 6) {
    bytes /= 1000.0;
    ++unit;
  }
  return fmt::format(unit == 0 ? "{:.0f} {}" : "{:.3g} {}", bytes, units[unit]);
}

double physicalMemory() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? static_cast<double>(pages) * static_cast<double>(size) : 0.0;
}

// The longest file name a trial writes, <name>-<strategy>-seed<seed>-<id>.h5
// staged as its checkpoint's ".ckpt.part-<pid>", must fit the file system's
// limit; found now rather than at the first checkpoint.
void checkFileNameLength(const ConfigNode& top, const ExperimentSpec& spec) {
  const std::size_t suffix = fmt::formatted_size("-seed{}-", spec.seed) + 12 +
                             std::string(".h5").size() + kFileSuffixReserve;
  const std::size_t longest = spec.name.size() + 1 + spec.strategyName.size() + suffix;
  if (longest <= kFileNameMax) return;
  const std::string message = fmt::format(
      "too long: trials write files named <name>-<strategy>-seed<seed>-<id>.h5 and their "
      "checkpoints' staging files, {} bytes here, beyond the file system's limit of {}; "
      "name and strategy name may have {} characters together",
      longest, kFileNameMax, kFileNameMax - suffix - 1);
  if (top.has("name")) top.fail("name", message);
  top.fail("", fmt::format("the file name '{}' (the experiment's name) is {}", spec.name, message));
}

ExperimentSpec parseTree(YAML::Node root, const std::string& file) {
  ExperimentSpec spec;
  spec.file = file;
  spec.root = root;
  const ConfigNode top(root, file, "");
  const std::string stem = std::filesystem::path(file).stem().string();
  if (!top.has("name") && !isPlainName(stem)) {
    top.fail("", fmt::format("the file name '{}' is not a plain name (letters, digits, _ - .) and "
                             "results are named after it: rename the file or add 'name: ...'",
                             stem));
  }
  spec.name = top.getString("name", stem);
  if (!isPlainName(spec.name)) {
    top.fail("name",
             fmt::format("'{}' is not a plain name (letters, digits, _ - .): it names files",
                         spec.name));
  }
  spec.seed = static_cast<uint64_t>(top.getInt("seed", 0, 0, (int64_t{1} << 53)));
  spec.output = top.getString("output", "out/" + spec.name);
  if (spec.output.empty()) top.fail("output", "the output folder must not be empty");
  readData(top.child("data"), spec.data);
  spec.model = top.child("model");  // validated by the model registry
  readTasks(top, spec);
  readTrain(top.child("train"), spec.train, spec.tasks);
  if (top.has("cross_validation")) {
    const ConfigNode cv = top.child("cross_validation");
    spec.crossValidation.folds = cv.requireInt("folds", 2, 1000);
    spec.crossValidation.fold = cv.requireInt("fold", 0, spec.crossValidation.folds - 1);
    spec.crossValidation.seed = static_cast<uint64_t>(cv.getInt("seed", 0, 0, int64_t{1} << 53));
    cv.finish();
  }
  checkMemory(spec, ModelSize{});
  if (!top.has("strategy")) top.fail("", "missing key 'strategy' (e.g. strategy: {name: fixed})");
  spec.strategy = top.child("strategy");
  spec.strategyName = spec.strategy.requireString("name");
  checkFileNameLength(top, spec);
  top.finish();
  return spec;
}

}  // namespace

bool isInsidePath(const std::string& key, const std::string& path) {
  return key == path || (key.size() > path.size() && key.compare(0, path.size(), path) == 0 &&
                         (key[path.size()] == '.' || key[path.size()] == '['));
}

std::string ExperimentSpec::resolvedYaml() const {
  YAML::Emitter out;
  out << root;
  return out.c_str();
}

ConfigError locateInOverrides(const ExperimentSpec& spec, const ConfigError& error) {
  std::vector<Override> applied;
  for (const auto& text : spec.overrides) applied.push_back({text, text.substr(0, text.find('='))});
  try {
    rethrowForOverrides(error, applied, spec.createdByOverrides);
  } catch (const ConfigError& located) {
    return located;
  }
}

ConfigError errorAtKey(const ExperimentSpec& spec, const std::string& keyPath,
                       const std::string& message) {
  for (auto it = spec.overrides.rbegin(); it != spec.overrides.rend(); ++it) {
    if (isInsidePath(keyPath, it->substr(0, it->find('=')))) {
      return ConfigError("--set " + *it, 0, 0, keyPath, message);
    }
  }
  // The deepest node of the path that the file has; a default has no line
  // of its own, so it is reported at the mapping that would hold it.
  YAML::Node node = spec.root;
  for (const std::string& part : splitPath(keyPath)) {
    if (!node.IsMap()) break;
    const YAML::Node next = static_cast<const YAML::Node&>(node)[part];
    if (!next.IsDefined() || next.IsNull()) break;
    node.reset(next);
  }
  const YAML::Mark mark = node.Mark();
  return ConfigError(spec.file, mark.line < 0 ? 0 : mark.line + 1,
                     mark.column < 0 ? 0 : mark.column + 1, keyPath, message);
}

// Sizes that cannot fit are rejected before anything is allocated (a crash
// or a half-written result file otherwise), located at the part that needs
// the most.
void checkMemory(const ExperimentSpec& spec, const ModelSize& model) {
  const double available = physicalMemory();
  const MemoryEstimate need = estimateMemory(spec, model);
  if (available <= 0.0 || need.total() <= available) return;
  const std::string message = fmt::format(
      "the trial needs about {} of memory (data {}, model {} with {:.4g} parameters, activations "
      "{}), more than this machine's {}",
      formatBytes(need.total()), formatBytes(need.data), formatBytes(need.model), need.parameters,
      formatBytes(need.activations), formatBytes(available));
  const ConfigNode top(spec.root, spec.file, "");
  if (need.data >= need.model && need.data >= need.activations) top.child("data").fail("", message);
  if (need.activations > need.model) top.child("train").fail("batch_size", message);
  const ConfigNode modelNode = top.child("model");
  for (const char* part : {"trunk", "head"}) {
    if (modelNode.has(part) && modelNode.child(part).has("hidden"))
      modelNode.child(part).fail("hidden", message);
  }
  modelNode.fail("", message);
}

std::vector<int64_t> knownInputShape(const DataSpec& data) {
  if (data.kind == "multi_fashion") return {1, 36, 36};
  if (data.kind == "gradnorm_toy") return {data.gradNormToy.inputDim};
  return {};
}

MemoryEstimate estimateMemory(const ExperimentSpec& spec, const ModelSize& model) {
  constexpr double kFloat = 4.0;
  const double tasks = static_cast<double>(spec.tasks.size());
  double outputs = 0.0;
  for (const auto& task : spec.tasks) outputs += static_cast<double>(task.outputs);
  MemoryEstimate e;
  double inputs = 0.0, examples = 0.0;
  if (spec.data.kind == "multi_fashion") {
    const auto& o = spec.data.multiFashion;
    inputs = 36.0 * 36.0;
    examples = static_cast<double>(o.trainSize) + static_cast<double>(o.valSize) +
               static_cast<double>(o.testSize);
    e.data = examples * (inputs * kFloat + tasks * 8.0) + 70000.0 * 784.0;
  } else if (spec.data.kind == "gradnorm_toy") {
    const auto& o = spec.data.gradNormToy;
    inputs = static_cast<double>(o.inputDim);
    examples = static_cast<double>(o.trainSize) + static_cast<double>(o.valSize) +
               static_cast<double>(o.testSize);
    // Plus the toy's functions, B + ε_i, held in double while generating.
    e.data = examples * (inputs + outputs) * kFloat +
             (tasks + 1.0) * inputs * static_cast<double>(o.outputDim) * 8.0;
  }
  e.parameters = model.parameters;
  double activationWidth = model.activationWidth;
  activationWidth += inputs + outputs;
  // Parameters, gradients, two Adam moments and a T×P per-task gradient buffer.
  e.model = e.parameters * kFloat * (4.0 + tasks);
  const double trainBatch = std::min(static_cast<double>(spec.train.batchSize), examples);
  const double evalBatch = std::min(static_cast<double>(spec.train.evalBatchSize), examples);
  // Forward values and their gradients (and T backward passes' worth of slack).
  e.activations = std::max(trainBatch * (2.0 + tasks), evalBatch) * activationWidth * kFloat;
  return e;
}

DatasetContext datasetContext(const ExperimentSpec& spec) {
  DatasetContext context;
  context.seed = spec.seed;
  context.experimentFolder = std::filesystem::path(spec.file).parent_path().string();
  return context;
}

std::vector<TaskSpec> datasetTasks(const DataSpec& data) {
  if (findDataset(data.kind) != nullptr) return {};
  if (data.kind == "multi_fashion") {
    return {{"top_left", TaskKind::kClassification, 10},
            {"bottom_right", TaskKind::kClassification, 10}};
  }
  std::vector<TaskSpec> tasks;
  for (int64_t i = 0; i < data.gradNormToy.tasks; ++i) {
    tasks.push_back({fmt::format("task{}", i), TaskKind::kRegression, data.gradNormToy.outputDim});
  }
  return tasks;
}

namespace {

/// Notes where a document's first node is, if it has any content (a bare
/// '---' gives a single null node).
class ContentFinder : public YAML::EventHandler {
 public:
  YAML::Mark content = YAML::Mark::null_mark();
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { note(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    note(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    note(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    note(mark);
  }
  void OnMapEnd() override {}

 private:
  void note(const YAML::Mark& mark) {
    if (content.line < 0) content = mark;
  }
};

/// Where the first document after the first one starts, if one with
/// content follows (null_mark() otherwise). Reads at most 65 documents:
/// yaml-cpp's LoadAll, unbounded, ran out of memory on malformed input
/// found by the fuzzer.
YAML::Mark secondDocument(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  ContentFinder first;
  if (!parser.HandleNextDocument(first)) return YAML::Mark::null_mark();
  for (int extra = 0; extra < 64; ++extra) {  // bare '---' separators carry nothing
    ContentFinder next;
    if (!parser.HandleNextDocument(next)) break;
    if (next.content.line >= 0) return next.content;
  }
  return YAML::Mark::null_mark();
}

}  // namespace

YAML::Node parseYaml(const std::string& text, const std::string& file) {
  try {
    YAML::Node root = YAML::Load(text);
    const YAML::Mark second = secondDocument(text);
    if (second.line >= 0) {
      throw ConfigError(file, second.line + 1, second.column + 1, "",
                        "a second YAML document (after '---'): an experiment file holds one "
                        "document, and fulcrum would ignore this one");
    }
    return root;
  } catch (const YAML::ParserException& error) {
    const int line = error.mark.line + 1;
    const auto [tabLine, tabColumn] = tabIndentAtOrBefore(text, line);
    if (tabLine > 0 && tabLine == line) {
      throw ConfigError(file, tabLine, tabColumn, "",
                        "YAML syntax error: tab in indentation (YAML indents with spaces only)");
    }
    std::string message = "YAML syntax error: " + error.msg;
    if (tabLine > 0) {
      message +=
          fmt::format(" (line {} is indented with a tab; YAML indents with spaces only)", tabLine);
    }
    throw ConfigError(file, line, error.mark.column + 1, "", message);
  } catch (const YAML::Exception& error) {
    throw ConfigError(file, 0, 0, "", "cannot parse YAML: " + error.msg);
  }
}

ExperimentSpec parseExperiment(const std::string& text, const std::string& file,
                               const std::vector<std::string>& overrides) {
  YAML::Node root = parseYaml(text, file);
  if (!root.IsDefined() || root.IsNull()) {
    root = YAML::Node(YAML::NodeType::Map);
    if (overrides.empty()) throw ConfigError(file, 0, 0, "", "the experiment file is empty");
  }
  if (!root.IsMap()) {
    throw ConfigError(file, root.Mark().line + 1, root.Mark().column + 1, "",
                      "an experiment file must be a mapping of keys (data, model, tasks, train, "
                      "strategy, ...)");
  }
  // The sweep blocks describe many trials (framework/sweep.h); one trial is
  // the base configuration without them.
  for (const char* key : {"sweep", "zip", "seeds"}) root.remove(key);
  // The key paths the overrides create, for locating errors at keys the
  // file lacks (rethrowForOverrides).
  std::set<std::string> created;
  std::vector<Override> applied;
  for (const auto& text_ : overrides) applied.push_back(applyOverride(root, text_, created));
  try {
    ExperimentSpec spec = parseTree(root, file);
    spec.overrides = overrides;
    spec.createdByOverrides = created;
    spec.resolvedYaml();  // every node must be representable
    return spec;
  } catch (const ConfigError& error) {
    rethrowForOverrides(error, applied, created);
  }
}

std::string readExperimentFile(const std::string& path) {
  std::error_code code;
  if (!std::filesystem::exists(path, code)) throw ConfigError(path, 0, 0, "", "file not found");
  // Before the open, which would wait forever on a FIFO or a device.
  if (const std::string kind = nonRegularKind(path); !kind.empty()) {
    throw ConfigError(path, 0, 0, "", fmt::format("is {}, not an experiment file", kind));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, 0, 0, "", "cannot open the file for reading");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

ExperimentSpec loadExperiment(const std::string& path, const std::vector<std::string>& overrides) {
  return parseExperiment(readExperimentFile(path), path, overrides);
}

namespace {

/// Shapes agree with the tasks and the model before step 0, for every data
/// source alike; errors located where the data was named.
void conformData(const ExperimentSpec& spec, MultiTaskData& data, bool registered) {
  try {
    conformTargets(data, spec.tasks);
    checkSplitShapes(data);
  } catch (const TargetShapeError& error) {
    throw errorAtKey(spec, registered ? "data.targets." + spec.tasks[error.task()].name : "data",
                     error.what());
  } catch (const SplitShapeError& error) {
    const bool inputs =
        registered && error.part() == DataPart::kInputs && spec.data.options.has("inputs");
    throw errorAtKey(spec, inputs ? "data.inputs" : "data", error.what());
  }
}

}  // namespace

namespace {

/// cross_validation: the training split's rows dealt into k folds (a
/// shuffle seeded by cross_validation.seed, fold f the f-th k-th of it);
/// fold f becomes the validation split, the others (in their order) train.
void applyFold(const ExperimentSpec& spec, MultiTaskData& data) {
  const CrossValidationSpec& cv = spec.crossValidation;
  if (cv.folds == 0) return;
  const int64_t n = data.train.size();
  if (n < cv.folds) {
    throw errorAtKey(spec, "cross_validation.folds",
                     fmt::format("{} folds of a training split of {} rows", cv.folds, n));
  }
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 generator(cv.seed * 0x9E3779B97F4A7C15ULL + 7);
  std::shuffle(order.begin(), order.end(), generator);
  const auto first = order.begin() + cv.fold * n / cv.folds;
  const auto last = order.begin() + (cv.fold + 1) * n / cv.folds;
  std::vector<int64_t> held(first, last), kept(order.begin(), first);
  kept.insert(kept.end(), last, order.end());
  std::sort(held.begin(), held.end());  // both in the split's own order
  std::sort(kept.begin(), kept.end());
  const Split train = data.train;
  data.val = train.rows(torch::tensor(held, torch::kInt64));
  data.train = train.rows(torch::tensor(kept, torch::kInt64));
}

}  // namespace

MultiTaskData loadData(const ExperimentSpec& spec) {
  if (const DatasetInfo* registered = findDataset(spec.data.kind)) {
    MultiTaskData data = registered->load(spec.data.options, spec.tasks, datasetContext(spec));
    if (data.train.targets.size() != spec.tasks.size()) {
      throw DataError(fmt::format("data kind '{}' loaded {} targets for {} tasks", spec.data.kind,
                                  data.train.targets.size(), spec.tasks.size()));
    }
    data.tasks = spec.tasks;
    conformData(spec, data, true);
    applyFold(spec, data);
    return data;
  }
  MultiTaskData data = spec.data.kind == "multi_fashion"
                           ? makeMultiFashion(spec.data.multiFashion, spec.seed)
                           : makeGradNormToy(spec.data.gradNormToy, spec.seed);
  data.tasks = spec.tasks;  // names from the experiment file
  conformData(spec, data, false);
  applyFold(spec, data);
  return data;
}

}  // namespace fulcrum
