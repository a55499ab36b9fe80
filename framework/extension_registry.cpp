#include "framework/extension_registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace fulcrum {

namespace {

std::vector<DatasetInfo>& datasets() {
  static std::vector<DatasetInfo> table;
  return table;
}

void checkNewName(const std::string& what, const std::string& name,
                  const std::vector<std::string>& builtIn, bool taken) {
  if (!isPlainName(name))
    throw std::invalid_argument(fmt::format("register{}: '{}' is not a plain name", what, name));
  if (taken || std::find(builtIn.begin(), builtIn.end(), name) != builtIn.end()) {
    throw std::invalid_argument(
        fmt::format("register{}: a {} named '{}' exists", what, what, name));
  }
}

}  // namespace

bool isPlainName(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

void registerDataset(DatasetInfo info) {
  checkNewName("Dataset", info.name, {"multi_fashion", "gradnorm_toy"},
               findDataset(info.name) != nullptr);
  if (!info.tasks || !info.load) {
    throw std::invalid_argument(
        fmt::format("registerDataset: '{}' needs both hooks, tasks and load", info.name));
  }
  datasets().push_back(std::move(info));
}

const std::vector<DatasetInfo>& datasetTable() { return datasets(); }

const DatasetInfo* findDataset(const std::string& name) {
  for (const auto& row : datasets()) {
    if (row.name == name) return &row;
  }
  return nullptr;
}

}  // namespace fulcrum
