// Reading the file datasets' HDF5 files (C API, as results/ does).
#include <hdf5.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>

#include "datasets/sources.h"

namespace fulcrum::detail {

namespace {

/// Closes an HDF5 identifier when it goes out of scope.
class Id {
 public:
  Id(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Id() {
    if (id_ >= 0) close_(id_);
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

/// HDF5 prints its error stack on every failed call unless told not to; the
/// failures here are reported as ConfigErrors instead.
void silenceHdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

struct Listing {
  std::vector<std::string> lines;
};

herr_t listDataset(hid_t root, const char* name, const H5O_info_t* info, void* data) {
  if (info->type != H5O_TYPE_DATASET) return 0;
  auto* listing = static_cast<Listing*>(data);
  std::string line = std::string("/") + name;
  Id dataset(H5Dopen2(root, name, H5P_DEFAULT), H5Dclose);
  if (dataset.valid()) {
    Id space(H5Dget_space(dataset.get()), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
    if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    std::vector<std::string> parts;
    for (hsize_t d : dims) parts.push_back(std::to_string(d));
    line += fmt::format(" ({})", rank == 0 ? std::string("scalar") : fmt::format("{}", fmt::join(parts, " × ")));
  }
  listing->lines.push_back(line);
  return 0;
}

/// "/x (1000 × 8), /y (1000)": every dataset in the file.
std::string datasetsIn(hid_t file) {
  Listing listing;
  H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_INC, listDataset, &listing, H5O_INFO_BASIC);
  if (listing.lines.empty()) return "none";
  return fmt::format("{}", fmt::join(listing.lines, ", "));
}

class File {
 public:
  File(const FileDataOptions& options, const ConfigNode& node)
      : path_(options.path), id_((silenceHdf5(), H5Fopen(options.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)), H5Fclose) {
    if (!id_.valid()) node.fail("path", fmt::format("{} is not an HDF5 file that can be read", path_));
  }

  /// The dataset `name` (absolute within the file), or a ConfigError at
  /// `key` (child of `where`) listing the datasets there are.
  std::vector<int64_t> shape(const std::string& name, const ConfigNode& where, const std::string& key) {
    const Id dataset(open(name, where, key), H5Dclose);
    Id space(H5Dget_space(dataset.get()), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 1) where.fail(key, fmt::format("{} in {} is a scalar, expected one row per example", name, path_));
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    return std::vector<int64_t>(dims.begin(), dims.end());
  }

  torch::Tensor read(const std::string& name, const ConfigNode& where, const std::string& key, torch::ScalarType type) {
    const std::vector<int64_t> dims = shape(name, where, key);
    const Id dataset(open(name, where, key), H5Dclose);
    torch::Tensor out = torch::empty(dims, type);
    const hid_t memType = type == torch::kFloat32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
    if (H5Dread(dataset.get(), memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()) < 0) {
      where.fail(key, fmt::format("cannot read {} in {} as numbers", name, path_));
    }
    return out;
  }

 private:
  // The open dataset `name` (the caller closes it); a ConfigError listing
  // the file's datasets if there is none of that name.
  hid_t open(const std::string& name, const ConfigNode& where, const std::string& key) {
    // H5Lexists fails on a path whose parent group is missing; checked part by part.
    bool exists = !name.empty() && name != "/";
    for (std::size_t slash = name.find('/', 1); exists; slash = name.find('/', slash + 1)) {
      const std::string prefix = name.substr(0, slash);
      exists = H5Lexists(id_.get(), prefix.c_str(), H5P_DEFAULT) > 0;
      if (slash == std::string::npos) break;
    }
    const hid_t dataset = exists ? H5Dopen2(id_.get(), name.c_str(), H5P_DEFAULT) : -1;
    if (dataset < 0) {
      where.fail(key, fmt::format("no dataset {} in {}; datasets there: {}", name, path_, datasetsIn(id_.get())));
    }
    return dataset;
  }

  std::string path_;
  Id id_;
};

std::string inGroup(const std::string& group, const std::string& path) {
  const std::string relative = path.empty() || path[0] != '/' ? path : path.substr(1);
  return group.empty() ? "/" + relative : "/" + group + "/" + relative;
}

std::string shapeText(const std::vector<int64_t>& dims) {
  std::vector<std::string> parts;
  for (int64_t d : dims) parts.push_back(std::to_string(d));
  return fmt::format("{}", fmt::join(parts, " × "));
}

std::vector<std::string> groupsOf(const FileDataOptions& options) {
  if (options.groups) return {"train", "val", "test"};
  return {""};
}

}  // namespace

void checkHdf5(const FileDataOptions& options, const ConfigNode& node, std::vector<int64_t>& targetWidths) {
  File file(options, node);
  const ConfigNode targets = node.child("targets");
  for (const std::string& group : groupsOf(options)) {
    const std::string inputs = inGroup(group, options.inputs);
    const std::vector<int64_t> x = file.shape(inputs, node, "inputs");
    targetWidths.clear();
    for (const auto& [task, source] : options.targets) {
      const std::string name = inGroup(group, source);
      const std::vector<int64_t> y = file.shape(name, targets, task);
      if (y[0] != x[0]) {
        targets.fail(task, fmt::format("{} is {} but the inputs {} are {}: one row per example in both", name,
                                       shapeText(y), inputs, shapeText(x)));
      }
      int64_t width = 1;
      for (std::size_t d = 1; d < y.size(); ++d) width *= y[d];
      targetWidths.push_back(width);
    }
  }
}

std::vector<SourceSplit> readHdf5(const FileDataOptions& options, const ConfigNode& node) {
  File file(options, node);
  const ConfigNode targets = node.child("targets");
  std::vector<SourceSplit> splits;
  for (const std::string& group : groupsOf(options)) {
    SourceSplit split;
    split.inputName = inGroup(group, options.inputs);
    split.raw.inputs = file.read(split.inputName, node, "inputs", torch::kFloat32);
    for (const auto& [task, source] : options.targets) {
      split.targetNames.push_back(inGroup(group, source));
      split.raw.targets.push_back(file.read(split.targetNames.back(), targets, task, torch::kFloat64));
      if (split.raw.targets.back().size(0) != split.raw.inputs.size(0)) {
        targets.fail(task, fmt::format("{} has {} rows but the inputs {} have {}", split.targetNames.back(),
                                       split.raw.targets.back().size(0), split.inputName, split.raw.inputs.size(0)));
      }
    }
    if (!torch::isfinite(split.raw.inputs).all().item<bool>()) {
      node.fail("inputs", fmt::format("{} in {} holds NaN or infinite values (only targets may be missing)",
                                      split.inputName, options.path));
    }
    split.rowName = [](int64_t i) { return fmt::format("row {}", i); };
    splits.push_back(std::move(split));
  }
  return splits;
}

}  // namespace fulcrum::detail
