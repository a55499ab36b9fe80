// Readers behind the file datasets (internal to datasets/).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datasets/file_datasets.h"

namespace fulcrum::detail {

/// A split read from a file, with where each target came from for messages.
struct SourceSplit {
  RawSplit raw;
  std::vector<std::string> targetNames;   ///< per task: dataset path or column name
  std::string inputName;                  ///< dataset path, or "the input columns"
  std::function<std::string(int64_t)> rowName;  ///< row i → "row i" / "line L"
};

/// Checks before anything runs that the file opens and holds the input and
/// target datasets with agreeing first dimensions (ConfigError at the key
/// concerned, listing the datasets present). Returns the shape of one input
/// example and the number of columns of each target (1 for a vector).
void checkHdf5(const FileDataOptions& options, const ConfigNode& node, std::vector<int64_t>& targetWidths);
/// Reads the whole file: one split (fractions) or three (groups: train, val, test).
std::vector<SourceSplit> readHdf5(const FileDataOptions& options, const ConfigNode& node);

/// Checks the header of a CSV file names the input and target columns.
void checkCsvHeader(const FileDataOptions& options, const ConfigNode& node);
/// Reads the whole CSV file.
SourceSplit readCsv(const FileDataOptions& options, const ConfigNode& node);

}  // namespace fulcrum::detail
