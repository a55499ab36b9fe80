#include "results/tidy_export.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "results/comparison.h"
#include "results/json.h"
#include "results/trial_file.h"

namespace fulcrum::results {
namespace {

/// One row's fields after the per-trial columns.
struct Row {
  std::string task, split, step, epoch, metric, select;
  std::string otherTask;  ///< written in the split column's place for gradients
  double value = 0.0;
};

/// Writes rows of one trial; the per-trial columns are fixed at construction.
class RowWriter {
 public:
  RowWriter(const TrialSet& set, const TrialEntry& trial, ExportWhat what, ExportFormat format,
            std::ostream& out)
      : what_(what), format_(format), out_(out), columns_(exportColumns(set, what)) {
    fixed_ = {trial.name, trial.status, trial.label, trial.strategy, std::to_string(trial.seed)};
    for (const std::string& key : set.sweptKeys) {
      const auto found = trial.config.find(key);
      fixed_.push_back(found == trial.config.end() ? "-" : found->second);
    }
  }

  void write(const Row& row) {
    std::vector<std::string> fields = fixed_;
    const std::string& second = what_ == ExportWhat::kGradients ? row.otherTask : row.split;
    for (const std::string* text : {&row.task, &second, &row.step, &row.epoch, &row.metric})
      fields.push_back(*text);
    if (what_ == ExportWhat::kSummary) fields.push_back(row.select);
    std::string line;
    if (format_ == ExportFormat::kCsv) {
      for (const std::string& field : fields) line += csvField(field) + ",";
      line += std::isfinite(row.value) ? fmt::format("{}", row.value) : "";
    } else {
      line = "{";
      for (std::size_t i = 0; i < fields.size(); ++i) {
        // Numbers stay numbers in JSON: seed, step, epoch.
        const std::string& name = columns_[i];
        const bool numeric =
            (name == "seed" || name == "step" || name == "epoch") && !fields[i].empty();
        line +=
            fmt::format("{}: {}, ", jsonString(name), numeric ? fields[i] : jsonString(fields[i]));
      }
      line += fmt::format("\"value\": {}}}", jsonNumber(row.value));
    }
    out_ << line << '\n';
    ++rows_;
  }

  std::size_t rows() const { return rows_; }

  static std::string csvField(const std::string& text) {
    if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
    std::string quoted = "\"";
    for (char ch : text) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return quoted + "\"";
  }

 private:
  ExportWhat what_;
  ExportFormat format_;
  std::ostream& out_;
  std::vector<std::string> columns_;
  std::vector<std::string> fixed_;
  std::size_t rows_ = 0;
};

std::string integerText(double value) {
  return std::isfinite(value) ? fmt::format("{}", static_cast<long long>(value)) : "";
}

/// One row per value of a per-step curve, with its step and epoch from the
/// group's own step and epoch curves.
void writeStepCurve(const std::vector<double>& values, const std::vector<double>& steps,
                    const std::vector<double>& epochs, Row& row, RowWriter& writer) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    row.step = i < steps.size() ? integerText(steps[i]) : std::to_string(i);
    row.epoch = i < epochs.size() ? integerText(epochs[i]) : "";
    row.value = values[i];
    writer.write(row);
  }
}

void writeSteps(const TrialReader& reader, RowWriter& writer) {
  const std::vector<double> steps = reader.curve("steps/step");
  const std::vector<double> epochs =
      reader.hasCurve("steps/epoch") ? reader.curve("steps/epoch") : std::vector<double>{};
  for (const std::string& curve : reader.curves()) {
    if (curve.rfind("steps/", 0) != 0 || curve == "steps/step" || curve == "steps/epoch") continue;
    const std::string rest = curve.substr(6);
    const std::size_t slash = rest.find('/');
    if (slash == std::string::npos) continue;
    const std::string group = rest.substr(0, slash), name = rest.substr(slash + 1);
    Row row;
    if (group == "loss" || group == "weight") {
      row.task = name;
      row.split = "train";
      row.metric = group;
    } else {
      row.metric = name;
    }
    writeStepCurve(reader.curve(curve), steps, epochs, row, writer);
  }
}

void writeEpochs(const TrialReader& reader, RowWriter& writer) {
  const std::vector<double> epochs = reader.curve("epochs/epoch");
  for (const std::string& curve : reader.curves()) {
    if (curve.rfind("epochs/", 0) != 0 || curve == "epochs/epoch") continue;
    Row row;
    const std::string rest = curve.substr(7);
    const std::size_t first = rest.find('/'), last = rest.rfind('/');
    if (first == std::string::npos) {
      row.metric = rest;  // epochs/seconds
    } else {
      row.split = rest.substr(0, first);
      row.task = first == last ? "" : rest.substr(first + 1, last - first - 1);
      row.metric = rest.substr(last + 1);
    }
    const std::vector<double> values = reader.curve(curve);
    for (std::size_t i = 0; i < values.size(); ++i) {
      row.epoch = i < epochs.size() ? integerText(epochs[i]) : std::to_string(i);
      row.value = values[i];
      writer.write(row);
    }
  }
}

/// gradients/norm/<task>, gradients/cosine/<task>/<other>, gradients/<name>.
void writeGradients(const TrialReader& reader, RowWriter& writer) {
  if (!reader.hasCurve("gradients/step")) return;  // logged without gradients
  const std::vector<double> steps = reader.curve("gradients/step");
  const std::vector<double> epochs = reader.curve("gradients/epoch");
  for (const std::string& curve : reader.curves()) {
    if (curve.rfind("gradients/", 0) != 0 || curve == "gradients/step" ||
        curve == "gradients/epoch")
      continue;
    const std::string rest = curve.substr(10);
    Row row;
    if (rest.rfind("norm/", 0) == 0) {
      row.task = rest.substr(5);
      row.metric = "grad_norm";
    } else if (rest.rfind("cosine/", 0) == 0) {
      const std::string pair = rest.substr(7);
      const std::size_t slash = pair.find('/');
      row.task = pair.substr(0, slash);
      row.otherTask = slash == std::string::npos ? "" : pair.substr(slash + 1);
      row.metric = "cosine";
    } else {
      row.metric = rest;
    }
    writeStepCurve(reader.curve(curve), steps, epochs, row, writer);
  }
}

void writeSummary(const TrialReader& reader, const TrialEntry& trial, RowWriter& writer) {
  const TrialScore score = scoreTrial(reader, trial);
  const std::vector<double> epochs = reader.curve("epochs/epoch");
  for (const auto& [column, value] : score.finalValues) {
    Row row;
    const std::size_t slash = column.rfind('/');
    row.task = column.substr(0, slash);
    row.metric = column.substr(slash + 1);
    row.split = "test";
    row.select = "final";
    row.epoch = epochs.empty() ? "" : integerText(epochs.back());
    row.value = value;
    writer.write(row);
    row.select = "best";
    const int64_t best = score.bestEpochs.at(column);
    row.epoch = best >= 0 ? std::to_string(best) : "";
    row.value = score.bestValues.at(column);
    writer.write(row);
  }
}

}  // namespace

ExportWhat parseExportWhat(const std::string& name) {
  if (name == "steps") return ExportWhat::kSteps;
  if (name == "epochs") return ExportWhat::kEpochs;
  if (name == "summary") return ExportWhat::kSummary;
  if (name == "gradients") return ExportWhat::kGradients;
  throw std::invalid_argument(
      fmt::format("unknown --what '{}' (known: steps, epochs, summary, gradients)", name));
}

ExportFormat parseExportFormat(const std::string& name) {
  if (name == "csv") return ExportFormat::kCsv;
  if (name == "jsonl") return ExportFormat::kJsonl;
  throw std::invalid_argument(fmt::format("unknown --format '{}' (known: csv, jsonl)", name));
}

std::vector<std::string> exportColumns(const TrialSet& set, ExportWhat what) {
  std::vector<std::string> columns = {"trial", "status", "config", "strategy", "seed"};
  columns.insert(columns.end(), set.sweptKeys.begin(), set.sweptKeys.end());
  const char* second = what == ExportWhat::kGradients ? "other_task" : "split";
  for (const char* name : {"task", second, "step", "epoch", "metric"}) columns.push_back(name);
  if (what == ExportWhat::kSummary) columns.push_back("select");
  columns.push_back("value");
  return columns;
}

ExportResult exportTidy(const TrialSet& set, ExportWhat what, ExportFormat format,
                        std::ostream& out) {
  ExportResult result;
  result.unreadable = set.unreadable;
  if (format == ExportFormat::kCsv) {
    const std::vector<std::string> columns = exportColumns(set, what);
    std::string header;
    for (const std::string& column : columns)
      header += (header.empty() ? "" : ",") + RowWriter::csvField(column);
    out << header << '\n';
  }
  for (const TrialEntry& trial : set.trials) {
    if (what == ExportWhat::kSummary && trial.status != "completed") continue;
    if (what == ExportWhat::kSummary && isDuplicate(set, trial.path)) continue;
    RowWriter writer(set, trial, what, format, out);
    try {
      const TrialReader reader(trial.path);
      if (what == ExportWhat::kSteps) writeSteps(reader, writer);
      if (what == ExportWhat::kEpochs) writeEpochs(reader, writer);
      if (what == ExportWhat::kSummary) writeSummary(reader, trial, writer);
      if (what == ExportWhat::kGradients) writeGradients(reader, writer);
      ++result.trials;
    } catch (const FileError& e) {
      // The reader loads a whole file before the first row is written, so a
      // bad file leaves no partial rows behind.
      result.unreadable.push_back({trial.path, e.what()});
    }
    result.rows += writer.rows();
  }
  out.flush();
  return result;
}

}  // namespace fulcrum::results
