// Reading the file datasets' CSV files: a header row of column names, then
// one row per example; commas separate cells (no quoting).
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <unordered_set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>

#include "datasets/sources.h"

namespace fulcrum::detail {

namespace {

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

std::vector<std::string> cells(const std::string& line) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = line.find(',', start);
    out.push_back(trim(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

/// True for an empty cell or NA / NaN / nan (a missing value).
bool isMissing(const std::string& cell) {
  return cell.empty() || cell == "NA" || cell == "NaN" || cell == "nan" || cell == "NAN";
}

struct Columns {
  std::vector<std::string> header;
  std::vector<std::size_t> inputs;     // column indices
  std::vector<std::size_t> targets;    // per entry of options.targets
};

Columns resolveColumns(const FileDataOptions& options, const ConfigNode& node, std::ifstream& in) {
  std::string line;
  if (!std::getline(in, line) || trim(line).empty()) node.fail("path", fmt::format("{}: no header row", options.path));
  // A UTF-8 byte order mark (spreadsheets write one) is no part of the first name.
  if (line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
  Columns columns;
  columns.header = cells(line);
  for (std::size_t i = 0; i < columns.header.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (columns.header[j] == columns.header[i]) {
        node.fail("path", fmt::format("{} line 1: the header names column '{}' twice (columns {} and {}): "
                                      "every column needs its own name",
                                      options.path, cellForMessage(columns.header[i]), j + 1, i + 1));
      }
    }
  }
  const auto indexOf = [&](const std::string& name) -> long {
    for (std::size_t i = 0; i < columns.header.size(); ++i) {
      if (columns.header[i] == name) return static_cast<long>(i);
    }
    return -1;
  };
  std::vector<std::string> shownNames;
  for (const auto& name : columns.header) shownNames.push_back(cellForMessage(name));
  const std::string known = fmt::format("{}", fmt::join(shownNames, ", "));
  const ConfigNode targets = node.child("targets");
  for (const auto& [task, column] : options.targets) {
    const long i = indexOf(column);
    if (i < 0) targets.fail(task, fmt::format("{} has no column '{}'; columns: {}", options.path, column, known));
    columns.targets.push_back(static_cast<std::size_t>(i));
  }
  if (options.inputColumns.empty()) {
    for (std::size_t i = 0; i < columns.header.size(); ++i) {
      bool isTarget = false;
      for (std::size_t t : columns.targets) isTarget = isTarget || t == i;
      if (!isTarget) columns.inputs.push_back(i);
    }
    if (columns.inputs.empty()) node.fail("targets", fmt::format("{}: every column is a target; no inputs left", options.path));
  } else {
    for (const auto& column : options.inputColumns) {
      const long i = indexOf(column);
      if (i < 0) node.fail("inputs", fmt::format("{} has no column '{}'; columns: {}", options.path, column, known));
      const auto index = static_cast<std::size_t>(i);
      if (std::find(columns.inputs.begin(), columns.inputs.end(), index) != columns.inputs.end()) {
        node.fail("inputs", fmt::format("column '{}' is listed twice", column));
      }
      for (std::size_t t = 0; t < columns.targets.size(); ++t) {
        if (columns.targets[t] == index) {
          node.fail("inputs", fmt::format("column '{}' of {} is the target of task '{}': as an input the label "
                                          "would leak into the features",
                                          column, options.path, options.targets[t].first));
        }
      }
      columns.inputs.push_back(index);
    }
  }
  for (const auto& column : options.allowIdColumns) {
    const long i = indexOf(column);
    const bool input = i >= 0 && std::find(columns.inputs.begin(), columns.inputs.end(),
                                           static_cast<std::size_t>(i)) != columns.inputs.end();
    if (!input) {
      node.fail("allow_id_columns", fmt::format("'{}' is not an input column of {}", column, options.path));
    }
  }
  return columns;
}

/// The id and scale checks (file_datasets.h: kMinRowsForIdCheck,
/// kMaxUnscaledRatio), over every row before the split.
void checkInputColumns(const FileDataOptions& options, const ConfigNode& node, const Columns& columns,
                       const torch::Tensor& inputs) {
  const int64_t rows = inputs.size(0);
  const torch::Tensor x = inputs.to(torch::kFloat64).contiguous();
  const std::string inputsKey = node.has("inputs") ? "inputs" : "path";
  if (rows >= kMinRowsForIdCheck) {
    for (std::size_t k = 0; k < columns.inputs.size(); ++k) {
      const std::string& name = columns.header[columns.inputs[k]];
      if (std::find(options.allowIdColumns.begin(), options.allowIdColumns.end(), name) !=
          options.allowIdColumns.end()) {
        continue;
      }
      const torch::Tensor column = x.select(1, static_cast<int64_t>(k));
      if (!column.eq(column.floor()).all().item<bool>()) continue;
      if (std::get<0>(torch::_unique(column)).size(0) != rows) continue;
      node.fail(inputsKey, fmt::format("{} column '{}' looks like a row index or an id: its {} values are distinct "
                                       "integers ({} to {}). Leave it out of `inputs`, or list it in "
                                       "data.allow_id_columns: [{}] if it is a genuine feature",
                                       options.path, cellForMessage(name), rows,
                                       column.min().item<double>(), column.max().item<double>(),
                                       cellForMessage(name)));
    }
  }
  if (!options.standardize && !options.allowUnscaled && columns.inputs.size() > 1 && rows > 1) {
    const torch::Tensor std = (x - x.mean(0)).square().mean(0).sqrt();
    const double* s = std.data_ptr<double>();
    int64_t low = -1, high = -1;
    for (int64_t k = 0; k < std.size(0); ++k) {
      if (s[k] <= 0) continue;  // a constant column has no scale
      if (low < 0 || s[k] < s[low]) low = k;
      if (high < 0 || s[k] > s[high]) high = k;
    }
    if (low >= 0 && s[high] > kMaxUnscaledRatio * s[low]) {
      node.fail("standardize",
                fmt::format("standardize is false but the input columns of {} differ in scale by a factor of {:.3g} "
                            "(standard deviation of '{}' {:.3g}, of '{}' {:.3g}; more than {:g} apart). Set "
                            "standardize: true, or data.allow_unscaled: true to train on the raw values",
                            options.path, s[high] / s[low], cellForMessage(columns.header[columns.inputs[high]]),
                            s[high], cellForMessage(columns.header[columns.inputs[low]]), s[low], kMaxUnscaledRatio));
    }
  }
}

std::ifstream openCsv(const FileDataOptions& options, const ConfigNode& node) {
  std::ifstream in(options.path);
  if (!in) node.fail("path", fmt::format("cannot open {} for reading", options.path));
  return in;
}

}  // namespace

void checkCsvHeader(const FileDataOptions& options, const ConfigNode& node) {
  std::ifstream in = openCsv(options, node);
  resolveColumns(options, node, in);
}

SourceSplit readCsv(const FileDataOptions& options, const ConfigNode& node) {
  std::ifstream in = openCsv(options, node);
  const Columns columns = resolveColumns(options, node, in);
  std::vector<float> inputs;
  std::vector<std::vector<double>> targets(columns.targets.size());
  std::vector<int64_t> lines;
  std::string line;
  int64_t number = 1;
  const auto where = [&](std::size_t column) {
    return fmt::format("{} line {}, column '{}'", options.path, number, cellForMessage(columns.header[column]));
  };
  while (std::getline(in, line)) {
    ++number;
    if (trim(line).empty()) continue;
    const std::vector<std::string> row = cells(line);
    if (row.size() != columns.header.size()) {
      node.fail("path", fmt::format("{} line {} has {} cells, the header has {}", options.path, number, row.size(),
                                    columns.header.size()));
    }
    const auto parse = [&](std::size_t column, bool target) {
      const std::string& cell = row[column];
      if (isMissing(cell)) {
        if (target) return std::nan("");
        node.fail("path", fmt::format("{}: empty or missing input value (only targets may be missing)", where(column)));
      }
      char* end = nullptr;
      errno = 0;
      const double value = std::strtod(cell.c_str(), &end);
      // The whole cell, not up to a NUL byte inside it.
      if (std::isinf(value) && end == cell.c_str() + cell.size() && errno != ERANGE) {
        node.fail("path", fmt::format("{}: '{}' is infinite (only NaN or an empty cell marks a missing value)",
                                      where(column), cellForMessage(cell)));
      }
      if (end != cell.c_str() + cell.size() || cell.empty() || errno == ERANGE || !std::isfinite(value)) {
        node.fail("path", fmt::format("{}: '{}' is not a number", where(column), cellForMessage(cell)));
      }
      return value;
    };
    for (std::size_t column : columns.inputs) inputs.push_back(static_cast<float>(parse(column, false)));
    for (std::size_t t = 0; t < columns.targets.size(); ++t) targets[t].push_back(parse(columns.targets[t], true));
    lines.push_back(number);
  }
  const auto rows = static_cast<int64_t>(lines.size());
  if (rows == 0) node.fail("path", fmt::format("{} has a header but no rows", options.path));
  SourceSplit split;
  split.raw.inputs = torch::tensor(inputs, torch::kFloat32).reshape({rows, static_cast<int64_t>(columns.inputs.size())});
  for (std::size_t t = 0; t < targets.size(); ++t) {
    split.raw.targets.push_back(torch::tensor(targets[t], torch::kFloat64));
    split.targetNames.push_back(
        fmt::format("{} column '{}'", options.path, cellForMessage(columns.header[columns.targets[t]])));
  }
  split.inputName = "the input columns";
  checkInputColumns(options, node, columns, split.raw.inputs);
  split.rowName = [lines](int64_t i) { return fmt::format("line {}", lines[static_cast<std::size_t>(i)]); };
  return split;
}

}  // namespace fulcrum::detail
