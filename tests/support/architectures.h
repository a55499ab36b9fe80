// The built-in architectures in a tiny configuration for tests that cover
// every row (an MLP trunk of one hidden layer of 8, so on a toy of 8 to 12
// inputs every model has well under 1,000 parameters), and a small binary
// funnel in a CSV file for the architectures whose tasks must be binary.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "datasets/file_datasets.h"

namespace fulcrum::testing {

struct TinyArchitecture {
  std::string model;         ///< the `model:` mapping
  bool binaryTasks = false;  ///< its tasks must be binary (funnelCsv's data)
};

/// One row per built-in architecture. A new architecture adds its row here,
/// and the strategy matrix and the resume test cover it.
inline const std::vector<TinyArchitecture>& tinyArchitectures() {
  static const std::vector<TinyArchitecture> rows = {
      {"{architecture: hps, trunk: {kind: mlp, hidden: [8]}}"},
      {"{architecture: mmoe, experts: 2, trunk: {kind: mlp, hidden: [8]}}"},
      {"{architecture: cgc, shared_experts: 1, task_experts: 1, trunk: {kind: mlp, hidden: [8]}}"},
      {"{architecture: ple, levels: 2, trunk: {kind: mlp, hidden: [8]}}"},
      {"{architecture: dselect_k, experts: 3, k: 2, trunk: {kind: mlp, hidden: [8]}}"},
      // Each task's gated mixture as its feature (LibMTL's representations).
      {"{architecture: mmoe, experts: 2, features: per_task, trunk: {kind: mlp, hidden: [8]}}"},
      {"{architecture: cgc, shared_experts: 1, task_experts: 1, features: per_task, "
       "trunk: {kind: mlp, hidden: [8]}}"},
      {"{architecture: ple, levels: 2, features: per_task, trunk: {kind: mlp, hidden: [8]}}"},
      {"{architecture: dselect_k, experts: 3, k: 2, features: per_task, "
       "trunk: {kind: mlp, hidden: [8]}}"},
      {"{architecture: cross_stitch, trunk: {kind: mlp, hidden: [8]}}"},
      {"{architecture: soft_sharing, penalty: 0.01, trunk: {kind: mlp, hidden: [8]}}"},
      {"{architecture: cascade, trunk: {kind: mlp, hidden: [8]}}", true},
      {"{architecture: mtan, trunk: {kind: mlp, hidden: [8, 4]}}"},
      // No warm-up: every step samples the branching.
      {"{architecture: ltb, warmup_epochs: 0, trunk: {kind: mlp, hidden: [8, 4]}}"},
  };
  return rows;
}

/// Writes `file`: a header x0..x{F−1}, y0..y{T−1}, then `rows` rows of
/// inputs in (−1, 1) and funnel stages y_t = y_{t−1} ∧ (x_t + noise > 0)
/// (y_{−1} = 1), all from a fixed linear congruential generator. Returns
/// the experiment's `data:` and `tasks:` lines for it (tasks y0..y{T−1}, binary).
inline std::string funnelCsv(const std::filesystem::path& file, int rows, int features, int tasks) {
  uint64_t state = 12345;
  auto uniform = [&state] {  // in (−1, 1)
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) / 4503599627370496.0 - 1.0;
  };
  std::ofstream out(file);
  std::string targets, taskList;
  for (int f = 0; f < features; ++f) out << (f ? "," : "") << "x" << f;
  for (int t = 0; t < tasks; ++t) {
    const std::string name = "y" + std::to_string(t);
    out << "," << name;
    targets += (t ? ", " : "") + name + ": " + name;
    taskList += (t ? ", " : "") + std::string("{name: ") + name + ", kind: binary}";
  }
  out << "\n";
  for (int r = 0; r < rows; ++r) {
    std::vector<double> x;
    for (int f = 0; f < features; ++f) x.push_back(uniform());
    for (int f = 0; f < features; ++f) out << (f ? "," : "") << x[static_cast<std::size_t>(f)];
    bool stage = true;
    for (int t = 0; t < tasks; ++t) {
      stage = stage && x[static_cast<std::size_t>(t % features)] + 0.5 * uniform() > 0;
      out << "," << (stage ? 1 : 0);
    }
    out << "\n";
  }
  return "data: {kind: csv, path: '" + file.string() + "', targets: {" + targets +
         "}, val_fraction: 0.1, test_fraction: 0.1}\ntasks: [" + taskList + "]\n";
}

/// funnelCsv in a temporary file of this process, removed when destroyed.
struct TemporaryFunnel {
  std::filesystem::path file;
  std::string yaml;  ///< the `data:` and `tasks:` lines
  TemporaryFunnel(const std::string& stem, int rows, int features, int tasks)
      : file(std::filesystem::temp_directory_path() /
             ("fulcrum-" + stem + "-" + std::to_string(::getpid()) + ".csv")),
        yaml(funnelCsv(file, rows, features, tasks)) {
    registerFileDatasets();  // data.kind: csv
  }
  TemporaryFunnel(const TemporaryFunnel&) = delete;
  TemporaryFunnel& operator=(const TemporaryFunnel&) = delete;
  ~TemporaryFunnel() {
    std::error_code ignored;
    std::filesystem::remove(file, ignored);
  }
};

}  // namespace fulcrum::testing
