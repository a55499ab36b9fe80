// Reading the file datasets' CSV files: a header row of column names, then
// one row per example; commas separate cells (no quoting).
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
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
  Columns columns;
  columns.header = cells(line);
  const auto indexOf = [&](const std::string& name) -> long {
    for (std::size_t i = 0; i < columns.header.size(); ++i) {
      if (columns.header[i] == name) return static_cast<long>(i);
    }
    return -1;
  };
  const std::string known = fmt::format("{}", fmt::join(columns.header, ", "));
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
      columns.inputs.push_back(static_cast<std::size_t>(i));
    }
  }
  return columns;
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
    return fmt::format("{} line {}, column '{}'", options.path, number, columns.header[column]);
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
      if (end == cell.c_str() || *end != '\0' || errno == ERANGE || !std::isfinite(value)) {
        node.fail("path", fmt::format("{}: '{}' is not a number", where(column), cell));
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
    split.targetNames.push_back(fmt::format("{} column '{}'", options.path, columns.header[columns.targets[t]]));
  }
  split.inputName = "the input columns";
  split.rowName = [lines](int64_t i) { return fmt::format("line {}", lines[static_cast<std::size_t>(i)]); };
  return split;
}

}  // namespace fulcrum::detail
