#include "datasets/file_datasets.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "datasets/dense_fashion.h"
#include "datasets/sources.h"
#include "framework/regular_file.h"

namespace fulcrum {

namespace fs = std::filesystem;

namespace {

std::string shapeText(const torch::Tensor& t) {
  std::vector<std::string> parts;
  for (int64_t d : t.sizes()) parts.push_back(std::to_string(d));
  return fmt::format("{}", fmt::join(parts, " × "));
}

std::string number(double value) { return fmt::format("{}", value); }

// The tasks: the declared list, each naming one target (kinds from the list).
std::vector<TaskSpec> fileTasks(const ConfigNode& node, const std::vector<TaskSpec>& declared,
                                const DatasetContext& context, const std::string& kind) {
  const FileDataOptions options = readFileDataOptions(node, kind, context);
  std::vector<std::string> names;
  for (const auto& [task, source] : options.targets) names.push_back(task);
  if (declared.empty()) {
    node.fail("targets",
              fmt::format("data kind '{}' needs a tasks: list naming each target with its kind, "
                          "e.g. tasks: [{{name: {}, kind: binary}}] (targets: {})",
                          kind, names.front(), fmt::join(names, ", ")));
  }
  const ConfigNode targets = node.child("targets");
  for (const auto& task : declared) {
    if (std::find(names.begin(), names.end(), task.name) == names.end()) {
      targets.fail("", fmt::format("no target for task '{}' (targets: {})", task.name,
                                   fmt::join(names, ", ")));
    }
  }
  for (const auto& name : names) {
    const bool listed = std::any_of(declared.begin(), declared.end(),
                                    [&](const TaskSpec& t) { return t.name == name; });
    if (!listed) targets.fail(name, fmt::format("target '{}' is not in the tasks: list", name));
  }
  if (kind == "hdf5") {
    std::vector<int64_t> widths;
    detail::checkHdf5(options, node, widths);
    for (std::size_t i = 0; i < options.targets.size(); ++i) {
      // Not a structured binding: C++17 lets no lambda capture one (clang rejects it).
      const std::string& name = options.targets[i].first;
      const std::string& source = options.targets[i].second;
      const TaskSpec& task = *std::find_if(declared.begin(), declared.end(),
                                           [&](const TaskSpec& t) { return t.name == name; });
      const int64_t expected = task.kind == TaskKind::kRegression ? task.outputs : 1;
      if (widths[i] != expected) {
        targets.fail(
            name,
            fmt::format("{} has {} values per row, task '{}' ({}, outputs {}) needs {}", source,
                        widths[i], name, toString(task.kind), task.outputs, expected));
      }
    }
  } else {
    detail::checkCsvHeader(options, node);
    for (const auto& task : declared) {
      if (task.kind == TaskKind::kRegression && task.outputs != 1) {
        targets.fail(
            task.name,
            fmt::format("a csv target is one column: task '{}' needs outputs: 1", task.name));
      }
    }
  }
  return declared;
}

MultiTaskData fileLoad(const ConfigNode& node, const std::vector<TaskSpec>& tasks,
                       const DatasetContext& context, const std::string& kind) {
  const FileDataOptions options = readFileDataOptions(node, kind, context);
  // Sources in the order of the tasks.
  std::vector<std::size_t> order;
  for (const auto& task : tasks) {
    for (std::size_t i = 0; i < options.targets.size(); ++i) {
      if (options.targets[i].first == task.name) order.push_back(i);
    }
  }
  std::vector<detail::SourceSplit> sources;
  if (kind == "hdf5") {
    sources = detail::readHdf5(options, node);
  } else {
    sources.push_back(detail::readCsv(options, node));
  }
  const ConfigNode targetsNode = node.child("targets");
  std::vector<RawSplit> splits;
  for (auto& source : sources) {
    RawSplit converted;
    converted.inputs = source.raw.inputs;
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      const std::size_t k = order[t];
      converted.targets.push_back(convertLabels(source.raw.targets[k], tasks[t],
                                                options.missingLabel, targetsNode, tasks[t].name,
                                                source.targetNames[k], source.rowName));
    }
    splits.push_back(std::move(converted));
  }
  if (splits.size() == 1) {
    const int64_t rows = splits[0].inputs.size(0);
    const auto val =
        static_cast<int64_t>(std::llround(options.valFraction * static_cast<double>(rows)));
    const auto test =
        static_cast<int64_t>(std::llround(options.testFraction * static_cast<double>(rows)));
    if (rows - val - test < 1 || (options.valFraction > 0 && val < 1) ||
        (options.testFraction > 0 && test < 1)) {
      node.fail("path",
                fmt::format("{} holds {} rows: too few for val_fraction {} and test_fraction {} "
                            "(each split needs a row)",
                            options.path, rows, options.valFraction, options.testFraction));
    }
    splits =
        splitByFractions(splits[0], options.valFraction, options.testFraction, options.splitSeed);
  }
  MultiTaskData data;
  Split* outs[3] = {&data.train, &data.val, &data.test};
  for (int i = 0; i < 3; ++i) {
    outs[i]->inputs = splits[static_cast<std::size_t>(i)].inputs;
    outs[i]->targets = splits[static_cast<std::size_t>(i)].targets;
  }
  data.tasks = tasks;
  data.inputShape =
      std::vector<int64_t>(data.train.inputs.sizes().begin() + 1, data.train.inputs.sizes().end());
  for (const Split* split : {&data.train, &data.val, &data.test}) {
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      const torch::Tensor& y = split->targets[t];
      const bool missing = tasks[t].kind == TaskKind::kClassification
                               ? y.eq(kMissingClass).any().item<bool>()
                               : y.isnan().any().item<bool>();
      data.missingLabels = data.missingLabels || missing;
    }
  }
  if (options.standardize) standardize(data);
  return data;
}

}  // namespace

FileDataOptions readFileDataOptions(const ConfigNode& node, const std::string& kind,
                                    const DatasetContext& context) {
  FileDataOptions o;
  const std::string path = node.requireString("path");
  if (path.empty()) node.fail("path", "the path is empty");
  o.path = fs::path(path).is_absolute() || context.experimentFolder.empty()
               ? path
               : (fs::path(context.experimentFolder) / path).lexically_normal().string();
  std::error_code code;
  if (!fs::exists(o.path, code)) {
    node.fail("path",
              fmt::format(
                  "file not found: {}{}", o.path,
                  o.path == path ? "" : " (relative paths start at the experiment file's folder)"));
  }
  // Before any open, which would wait forever on a FIFO or a device.
  if (const std::string what = nonRegularKind(o.path); !what.empty())
    node.fail("path", fmt::format("{} is {}, not a {} file", o.path, what, kind));
  if (kind == "hdf5") {
    o.inputs = node.requireString("inputs");
    const std::string split = node.getString("split", "fractions", {"fractions", "groups"});
    o.groups = split == "groups";
  } else {
    o.inputColumns = node.getStringList("inputs", {});
    node.getString("split", "fractions", {"fractions"});
  }
  const ConfigNode targets = node.child("targets");
  if (!targets.yaml().IsMap() || targets.keys().empty()) {
    node.fail("targets", "expected a mapping of task name to " +
                             std::string(kind == "hdf5" ? "dataset, e.g. {ctr: /y_click}"
                                                        : "column, e.g. {ctr: click}"));
  }
  for (const auto& key : targets.keys()) o.targets.emplace_back(key, targets.requireString(key));
  if (!o.groups) {
    o.valFraction = node.getDouble("val_fraction", o.valFraction, 0.0, 0.99);
    o.testFraction = node.getDouble("test_fraction", o.testFraction, 0.0, 0.99);
    if (o.valFraction + o.testFraction >= 1.0) {
      node.fail("test_fraction",
                fmt::format("val_fraction + test_fraction = {} leaves no training rows",
                            o.valFraction + o.testFraction));
    }
    o.splitSeed = static_cast<uint64_t>(
        node.getInt("split_seed", static_cast<int64_t>(context.seed), 0, int64_t{1} << 53));
  } else {
    for (const char* key : {"val_fraction", "test_fraction", "split_seed"}) {
      if (node.has(key)) node.fail(key, "is used only with split: fractions (split is groups)");
    }
  }
  o.missingLabel = node.getDouble("missing_label", o.missingLabel);
  o.standardize = node.getBool("standardize", false);
  if (kind == "csv") {
    o.allowIdColumns = node.getStringList("allow_id_columns", {});
    o.allowUnscaled = node.getBool("allow_unscaled", false);
  }
  return o;
}

std::string cellForMessage(const std::string& cell) {
  constexpr std::size_t kLongest = 64, kShown = 48;
  const bool cut = cell.size() > kLongest;
  const std::string shown = cut ? cell.substr(0, kShown) : cell;
  std::string out;
  for (const char c : shown) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == 0) {
      out += "\\0";
    } else if (byte < 0x20 || byte == 0x7F) {
      out += fmt::format("\\x{:02X}", byte);
    } else {
      out += c;
    }
  }
  if (cut) out += fmt::format("… ({} characters)", cell.size());
  return out;
}

torch::Tensor convertLabels(const torch::Tensor& raw, const TaskSpec& task, double missingLabel,
                            const ConfigNode& where, const std::string& key,
                            const std::string& what,
                            const std::function<std::string(int64_t)>& rowName) {
  torch::Tensor values = raw.to(torch::kFloat64).contiguous();
  const int64_t rows = values.size(0);
  if (task.kind == TaskKind::kRegression) {
    values = values.reshape({rows, -1});
    if (values.size(1) != task.outputs) {
      where.fail(key, fmt::format("{} is {}: task '{}' has outputs {}", what, shapeText(raw),
                                  task.name, task.outputs));
    }
    // Only NaN means missing: ±inf would train to an infinite loss and be
    // averaged into comparisons.
    const double* v = values.data_ptr<double>();
    for (int64_t i = 0; i < values.numel(); ++i) {
      if (std::isinf(v[i])) {
        const int64_t row = i / task.outputs, column = i % task.outputs;
        where.fail(
            key, fmt::format(
                     "{}, {}{}: value {} of regression task '{}' is infinite (only NaN marks a "
                     "missing value)",
                     what, rowName(row), task.outputs > 1 ? fmt::format(", column {}", column) : "",
                     v[i] > 0 ? "inf" : "-inf", task.name));
      }
    }
    // N × outputs, also for outputs 1: the head's shape (conformTargets, framework/data.h).
    return values.to(torch::kFloat32);
  }
  if (values.numel() != rows) {
    where.fail(key, fmt::format("{} is {}: a {} task takes one label per row", what, shapeText(raw),
                                toString(task.kind)));
  }
  const double* v = values.data_ptr<double>();
  if (task.kind == TaskKind::kBinary) {
    torch::Tensor out = torch::empty({rows}, torch::kFloat32);
    float* o = out.data_ptr<float>();
    for (int64_t i = 0; i < rows; ++i) {
      if (std::isnan(v[i]) || v[i] == missingLabel) {
        o[i] = std::nanf("");
      } else if (v[i] == 0.0 || v[i] == 1.0) {
        o[i] = static_cast<float>(v[i]);
      } else {
        where.fail(
            key,
            fmt::format("{}, {}: label {} of binary task '{}' is not 0 or 1 (nor missing_label {})",
                        what, rowName(i), number(v[i]), task.name, number(missingLabel)));
      }
    }
    return out;
  }
  torch::Tensor out = torch::empty({rows}, torch::kInt64);
  int64_t* o = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < rows; ++i) {
    if (std::isnan(v[i]) || v[i] == missingLabel) {
      o[i] = kMissingClass;
    } else if (v[i] >= 0 && v[i] < static_cast<double>(task.outputs) && v[i] == std::floor(v[i])) {
      o[i] = static_cast<int64_t>(v[i]);
    } else {
      where.fail(
          key, fmt::format("{}, {}: class label {} of task '{}' is out of range 0..{} (outputs {}; "
                           "missing_label {} marks a missing label)",
                           what, rowName(i), number(v[i]), task.name, task.outputs - 1,
                           task.outputs, number(missingLabel)));
    }
  }
  return out;
}

std::vector<RawSplit> splitByFractions(const RawSplit& all, double valFraction, double testFraction,
                                       uint64_t seed) {
  const int64_t rows = all.inputs.size(0);
  const auto val = static_cast<int64_t>(std::llround(valFraction * static_cast<double>(rows)));
  const auto test = static_cast<int64_t>(std::llround(testFraction * static_cast<double>(rows)));
  // Fisher–Yates on mt19937_64 output (whose sequence the standard fixes),
  // so a seed gives the same split with any standard library.
  std::mt19937_64 engine(seed * 0x9E3779B97F4A7C15ULL + 0x5851F42D4C957F2DULL);
  std::vector<int64_t> permutation(static_cast<std::size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) permutation[static_cast<std::size_t>(i)] = i;
  for (int64_t i = rows - 1; i > 0; --i) {
    const auto n = static_cast<uint64_t>(i + 1);
    const uint64_t threshold = (0 - n) % n;
    uint64_t r = engine();
    while (r < threshold) r = engine();
    std::swap(permutation[static_cast<std::size_t>(i)],
              permutation[static_cast<std::size_t>(r % n)]);
  }
  const torch::Tensor index = torch::tensor(permutation, torch::kInt64);
  const int64_t train = rows - val - test;
  std::vector<RawSplit> out(3);
  const int64_t starts[3] = {0, train, train + val};
  const int64_t sizes[3] = {train, val, test};
  for (int s = 0; s < 3; ++s) {
    const torch::Tensor rowsOf = index.narrow(0, starts[s], sizes[s]);
    out[static_cast<std::size_t>(s)].inputs = all.inputs.index_select(0, rowsOf);
    for (const auto& y : all.targets)
      out[static_cast<std::size_t>(s)].targets.push_back(y.index_select(0, rowsOf));
  }
  return out;
}

void standardize(MultiTaskData& data) {
  const int64_t rows = data.train.inputs.size(0);
  const torch::Tensor flat = data.train.inputs.reshape({rows, -1}).to(torch::kFloat64);
  const torch::Tensor mean = flat.mean(0);
  torch::Tensor std = (flat - mean).square().mean(0).sqrt();
  std = torch::where(std > 0, std, torch::ones_like(std));
  for (Split* split : {&data.train, &data.val, &data.test}) {
    const int64_t n = split->inputs.size(0);
    if (n == 0) continue;  // an empty validation or test split (fraction 0)
    const torch::Tensor x = (split->inputs.reshape({n, -1}).to(torch::kFloat64) - mean) / std;
    split->inputs = x.to(torch::kFloat32).reshape(split->inputs.sizes()).contiguous();
  }
}

void registerFileDatasets() {
  static bool done = false;
  if (done) return;
  done = true;
  for (const char* name : {"hdf5", "csv"}) {
    const std::string kind = name;
    DatasetInfo info;
    info.name = kind;
    info.description = kind == "hdf5"
                           ? "an HDF5 file: an input dataset and one target dataset per task"
                           : "a CSV file with a header: input columns and one column per task";
    info.tasks = [kind](const ConfigNode& node, const std::vector<TaskSpec>& declared,
                        const DatasetContext& context) {
      return fileTasks(node, declared, context, kind);
    };
    info.load = [kind](const ConfigNode& node, const std::vector<TaskSpec>& tasks,
                       const DatasetContext& context) {
      return fileLoad(node, tasks, context, kind);
    };
    registerDataset(std::move(info));
  }
  registerDenseFashion();
}

}  // namespace fulcrum
