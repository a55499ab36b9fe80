// The trial file is written and read through HDF5's C API: the C++ API has no
// SWMR, chunk-location or EOA calls, and one error-handling path (return
// codes turned into FileError here) is simpler than two.

#include "results/trial_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

namespace fulcrum::results {

std::string stagingPrefix(const std::string& path) { return path + ".part-"; }

namespace {

namespace fs = std::filesystem;

/// Values per chunk of every curve: 8 KiB of float64. Per-step curves grow
/// by thousands of values, so smaller chunks would mostly add index entries;
/// per-epoch curves are short and waste at most one chunk each.
constexpr hsize_t kChunkValues = 1024;

/// Attributes the writer owns; callers may not set them.
const std::set<std::string>& reservedAttributes() {
  static const std::set<std::string> names = {"schema_version", "status", "end_time", "error"};
  return names;
}

/// Turns HDF5's automatic error-stack printing off while it lives and restores
/// whatever handler was installed before, so that bad files do not spam
/// stderr and the rest of the process keeps its own setting.
class QuietErrors {
 public:
  QuietErrors() {
    if (H5Eget_auto2(H5E_DEFAULT, &function_, &data_) < 0) {
      function_ = nullptr;
      data_ = nullptr;
    }
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, function_, data_); }
  QuietErrors(const QuietErrors&) = delete;
  QuietErrors& operator=(const QuietErrors&) = delete;

 private:
  H5E_auto2_t function_ = nullptr;
  void* data_ = nullptr;
};

/// What HDF5's error stack says about the last failure.
struct Hdf5Failure {
  std::string reason;         ///< the innermost (most specific) description
  bool truncated = false;     ///< some entry reports a truncated file
  bool openForWrite = false;  ///< some entry reports a file still marked open for writing
  bool locked = false;        ///< some entry reports a file lock held elsewhere (not damage)
};

/// HDF5's description of a failed system call ("file write failed: time =
/// …, errno = 28, error message = 'No space left on device', buf = …, bytes
/// actually written = 18446744073709551615, …", over two lines) reduced to
/// the system's own words; any other description unchanged.
std::string systemReason(const std::string& description) {
  const std::string marker = "error message = '";
  const std::size_t begin = description.find(marker);
  if (begin == std::string::npos) return description;
  const std::size_t end = description.find('\'', begin + marker.size());
  if (end == std::string::npos) return description;
  const std::size_t colon = description.find(':');
  const std::string call =
      colon != std::string::npos && colon < begin ? description.substr(0, colon) : "";
  const std::string words = description.substr(begin + marker.size(), end - begin - marker.size());
  return call.empty() ? words : fmt::format("{}: {}", call, words);
}

Hdf5Failure lastFailure() {
  struct Walk {
    hid_t truncatedCode;
    Hdf5Failure failure;
  } walk{H5E_TRUNCATED, {}};
  // Must not throw: HDF5 calls it from C.
  auto visit = [](unsigned, const H5E_error2_t* entry, void* data) -> herr_t {
    auto* out = static_cast<Walk*>(data);
    if (entry->min_num == out->truncatedCode) out->failure.truncated = true;
    if (entry->desc != nullptr && std::strstr(entry->desc, "already open for write") != nullptr)
      out->failure.openForWrite = true;
    if (entry->desc != nullptr && std::strstr(entry->desc, "lock") != nullptr)
      out->failure.locked = true;
    if (out->failure.reason.empty() && entry->desc != nullptr) {
      try {
        out->failure.reason = entry->desc;
      } catch (...) {
        return -1;
      }
    }
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, visit, &walk);
  if (walk.failure.reason.empty()) walk.failure.reason = "unknown HDF5 error";
  walk.failure.reason = systemReason(walk.failure.reason);
  return walk.failure;
}

[[noreturn]] void fail(const std::string& path, const std::string& what, bool damaged = false) {
  throw FileError(fmt::format("{}: {}", path, what), damaged);
}

/// Throws FileError with `what` and the reason HDF5 gives for its last failure.
[[noreturn]] void failHdf5(const std::string& path, const std::string& what) {
  throw FileError(fmt::format("{}: {} ({})", path, what, lastFailure().reason));
}

/// Owns one HDF5 identifier and closes it with the matching H5*close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& other) noexcept
      : id_(std::exchange(other.id_, H5I_INVALID_HID)), closer_(other.closer_) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      close();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      closer_ = other.closer_;
    }
    return *this;
  }
  ~Handle() { close(); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  /// Closes now; returns false if HDF5 reports a failure (for files, the
  /// last chance to learn that data did not reach the disk).
  bool close() {
    if (id_ < 0) return true;
    const herr_t status = closer_(std::exchange(id_, H5I_INVALID_HID));
    return status >= 0;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

/// Wraps a freshly returned identifier, throwing if HDF5 reported a failure.
Handle check(hid_t id, Handle::Closer closer, const std::string& path, const std::string& what) {
  if (id < 0) failHdf5(path, what);
  return Handle(id, closer);
}

void check(herr_t status, const std::string& path, const std::string& what) {
  if (status < 0) failHdf5(path, what);
}

/// File access properties shared by writer and reader: the newest format
/// (which SWMR requires), and file locking that is skipped rather than fatal
/// on file systems that do not support it (some cluster file systems).
Handle fileAccess(const std::string& path) {
  Handle fapl =
      check(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, path, "cannot create file access properties");
  check(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST), path,
        "cannot select the latest file format");
  check(H5Pset_file_locking(fapl.get(), true, true), path, "cannot configure file locking");
  return fapl;
}

Handle utf8StringType(const std::string& path) {
  Handle type = check(H5Tcopy(H5T_C_S1), H5Tclose, path, "cannot create a string type");
  check(H5Tset_size(type.get(), H5T_VARIABLE), path, "cannot create a string type");
  check(H5Tset_cset(type.get(), H5T_CSET_UTF8), path, "cannot create a string type");
  return type;
}

void deleteAttributeIfPresent(hid_t object, const std::string& name, const std::string& path) {
  const htri_t exists = H5Aexists(object, name.c_str());
  if (exists < 0) failHdf5(path, fmt::format("cannot look up attribute '{}'", name));
  if (exists > 0)
    check(H5Adelete(object, name.c_str()), path, fmt::format("cannot delete attribute '{}'", name));
}

/// Writes a scalar, variable-length UTF-8 string attribute (h5py reads it as
/// `str`), replacing one of the same name. Replacing by delete + create works
/// whatever type the old attribute had.
void writeText(hid_t object, const std::string& name, const std::string& value,
               const std::string& path) {
  deleteAttributeIfPresent(object, name, path);
  Handle type = utf8StringType(path);
  Handle space = check(H5Screate(H5S_SCALAR), H5Sclose, path, "cannot create a scalar dataspace");
  Handle attribute =
      check(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
            H5Aclose, path, fmt::format("cannot create attribute '{}'", name));
  const char* data = value.c_str();
  check(H5Awrite(attribute.get(), type.get(), &data), path,
        fmt::format("cannot write attribute '{}'", name));
}

/// Writes a scalar int64 attribute, replacing one of the same name.
void writeInteger(hid_t object, const std::string& name, int64_t value, const std::string& path) {
  deleteAttributeIfPresent(object, name, path);
  Handle space = check(H5Screate(H5S_SCALAR), H5Sclose, path, "cannot create a scalar dataspace");
  Handle attribute =
      check(H5Acreate2(object, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
            H5Aclose, path, fmt::format("cannot create attribute '{}'", name));
  check(H5Awrite(attribute.get(), H5T_NATIVE_INT64, &value), path,
        fmt::format("cannot write attribute '{}'", name));
}

void writeAttributes(hid_t object, const Attributes& attributes, const std::string& path) {
  for (const auto& [name, value] : attributes.text) writeText(object, name, value, path);
  for (const auto& [name, value] : attributes.integers) writeInteger(object, name, value, path);
}

/// Caller-supplied attributes: non-empty names, none reserved, none both
/// text and integer, and no NUL byte (HDF5 strings end at the first one, so
/// the value would be cut silently).
void validateAttributes(const Attributes& attributes, const std::string& path, const char* where) {
  auto checkName = [&](const std::string& name) {
    if (name.empty()) fail(path, fmt::format("{}: empty attribute name", where));
    if (name.find('\0') != std::string::npos)
      fail(path, fmt::format("{}: attribute name '{}' contains a NUL byte", where, name));
    if (reservedAttributes().count(name) != 0)
      fail(path,
           fmt::format("{}: attribute '{}' is reserved for the trial file itself", where, name));
  };
  for (const auto& [name, value] : attributes.text) {
    checkName(name);
    if (value.find('\0') != std::string::npos)
      fail(path, fmt::format("{}: text attribute '{}' contains a NUL byte", where, name));
    if (attributes.integers.count(name) != 0)
      fail(path,
           fmt::format("{}: attribute '{}' is given both as text and as an integer", where, name));
  }
  for (const auto& entry : attributes.integers) checkName(entry.first);
}

/// Curve names are relative HDF5 paths: no empty component (which also rules
/// out a leading or trailing '/' and "//"), no "." or "..", no duplicates,
/// and no curve that is also a group holding another curve.
void validateCurves(const std::vector<std::string>& curves, const std::string& path) {
  std::set<std::string> seen;
  for (const std::string& name : curves) {
    if (name.empty()) fail(path, "empty curve name");
    if (name.front() == '/') fail(path, fmt::format("curve name '{}' starts with '/'", name));
    if (name.find('\0') != std::string::npos)
      fail(path, fmt::format("curve name '{}' contains a NUL byte", name));
    std::size_t start = 0;
    while (start <= name.size()) {
      const std::size_t end = std::min(name.find('/', start), name.size());
      const std::string component = name.substr(start, end - start);
      if (component.empty() || component == "." || component == "..")
        fail(path, fmt::format("curve name '{}' has an empty, '.' or '..' component", name));
      start = end + 1;
    }
    if (!seen.insert(name).second) fail(path, fmt::format("curve '{}' is declared twice", name));
  }
  for (const std::string& name : curves) {
    for (std::size_t slash = name.find('/'); slash != std::string::npos;
         slash = name.find('/', slash + 1)) {
      const std::string group = name.substr(0, slash);
      if (seen.count(group) != 0)
        fail(path,
             fmt::format("curve '{}' cannot also be the group holding curve '{}'", group, name));
    }
  }
}

/// Where this process prepares a trial file before renaming it to `path`.
std::string stagingName(const std::string& path) {
  return fmt::format("{}{}", stagingPrefix(path), ::getpid());
}

/// Moves the finished `staging` file to `path` in one step; without
/// `overwrite` an existing `path` (even one that appeared meanwhile) is an error.
/// Fails unless `path` is a regular file or absent: a FIFO, a device node,
/// a folder or a symbolic link is never replaced by a trial file.
void requireRegularOrAbsent(const std::string& path) {
  std::error_code error;
  const fs::file_status status = fs::symlink_status(path, error);
  if (!fs::exists(status) || fs::is_regular_file(status)) return;
  const char* kind = fs::is_directory(status)        ? "a directory"
                     : fs::is_fifo(status)           ? "a FIFO"
                     : fs::is_symlink(status)        ? "a symbolic link"
                     : fs::is_character_file(status) ? "a character device"
                     : fs::is_block_file(status)     ? "a block device"
                                                     : "not a regular file";
  fail(path, fmt::format("is {}; only a regular file is ever replaced by a trial file", kind));
}

void publish(const std::string& staging, const std::string& path, bool overwrite) {
  requireRegularOrAbsent(path);  // again: it may have appeared since the constructor looked
  if (overwrite) {
    if (::rename(staging.c_str(), path.c_str()) != 0)
      fail(path, fmt::format("cannot move the new file into place: {}", std::strerror(errno)));
    return;
  }
  if (::link(staging.c_str(), path.c_str()) == 0) {
    ::unlink(staging.c_str());
    return;
  }
  if (errno == EEXIST) fail(path, "file already exists (pass overwrite to replace it)");
  // Some file systems have no hard links: check, then rename.
  std::error_code error;
  if (fs::exists(fs::symlink_status(path, error)))
    fail(path, "file already exists (pass overwrite to replace it)");
  if (::rename(staging.c_str(), path.c_str()) != 0)
    fail(path, fmt::format("cannot move the new file into place: {}", std::strerror(errno)));
}

std::string utcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  const std::size_t length = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return std::string(text, length);
}

}  // namespace

// ---------------------------------------------------------------------------
// TrialWriter

struct TrialWriter::Impl {
  std::string path;
  Handle file;                               ///< open until finish()
  std::vector<std::string> names;            ///< curve paths, in declaration order
  std::vector<Handle> datasets;              ///< one per curve
  std::vector<std::vector<double>> pending;  ///< appended, not yet written
  std::vector<hsize_t> written;              ///< values already in each dataset
  bool finished = false;                     ///< finish() was called

  void requireOpen(const char* operation) const {
    if (finished) fail(path, fmt::format("{} called after finish()", operation));
  }

  void writePending() {
    for (std::size_t i = 0; i < datasets.size(); ++i) {
      std::vector<double>& values = pending[i];
      if (values.empty()) continue;
      const hid_t dataset = datasets[i].get();
      const hsize_t start = written[i];
      const hsize_t count = values.size();
      const hsize_t size = start + count;
      const std::string what = fmt::format("cannot write curve '{}'", names[i]);
      check(H5Dset_extent(dataset, &size), path, what);
      Handle fileSpace = check(H5Dget_space(dataset), H5Sclose, path, what);
      check(H5Sselect_hyperslab(fileSpace.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr),
            path, what);
      Handle memorySpace = check(H5Screate_simple(1, &count, nullptr), H5Sclose, path, what);
      check(H5Dwrite(dataset, H5T_NATIVE_DOUBLE, memorySpace.get(), fileSpace.get(), H5P_DEFAULT,
                     values.data()),
            path, what);
      written[i] = size;
      values.clear();
    }
  }

  /// Closes every dataset, then the file; throws if the close fails.
  void closeFile() {
    bool ok = true;
    for (Handle& dataset : datasets) ok = dataset.close() && ok;
    ok = file.close() && ok;
    if (!ok) failHdf5(path, "cannot close the file");
  }
};

TrialWriter::TrialWriter(const std::string& path, const Attributes& attributes,
                         const std::vector<std::string>& curves, bool overwrite,
                         std::vector<std::vector<double>> initialValues)
    : impl_(std::make_unique<Impl>()) {
  QuietErrors quiet;
  Impl& impl = *impl_;
  impl.path = path;
  if (path.empty()) throw FileError("(empty path): a trial file needs a path");
  validateAttributes(attributes, path, "trial attributes");
  validateCurves(curves, path);
  if (!initialValues.empty() && initialValues.size() != curves.size())
    fail(path, fmt::format("{} initial curves given for {} declared", initialValues.size(),
                           curves.size()));

  std::error_code error;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, error))
    fail(path, fmt::format("directory '{}' does not exist", parent.string()));
  requireRegularOrAbsent(path);
  if (fs::exists(fs::symlink_status(path, error)) && !overwrite)
    fail(path, "file already exists (pass overwrite to replace it)");

  // The file is made under a staging name and renamed into place once it is
  // in SWMR mode: a process killed while creating it leaves no half-made
  // file under `path` (and an overwritten one stays intact until then).
  const std::string staging = stagingName(path);
  Handle fapl = fileAccess(path);
  impl.file = check(H5Fcreate(staging.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose,
                    path, "cannot create the file");
  try {
    const hid_t root = impl.file.get();
    writeInteger(root, "schema_version", kSchemaVersion, path);
    writeText(root, "status", "running", path);
    writeText(root, "end_time", "", path);
    writeText(root, "error", "", path);
    writeAttributes(root, attributes, path);

    Handle linkProperties =
        check(H5Pcreate(H5P_LINK_CREATE), H5Pclose, path, "cannot create link properties");
    check(H5Pset_create_intermediate_group(linkProperties.get(), 1), path,
          "cannot create link properties");
    Handle createProperties =
        check(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, path, "cannot create dataset properties");
    check(H5Pset_chunk(createProperties.get(), 1, &kChunkValues), path,
          "cannot create dataset properties");
    const hsize_t initial = 0;
    const hsize_t unlimited = H5S_UNLIMITED;
    Handle space = check(H5Screate_simple(1, &initial, &unlimited), H5Sclose, path,
                         "cannot create a dataspace");
    for (const std::string& name : curves) {
      impl.datasets.push_back(
          check(H5Dcreate2(root, name.c_str(), H5T_IEEE_F64LE, space.get(), linkProperties.get(),
                           createProperties.get(), H5P_DEFAULT),
                H5Dclose, path, fmt::format("cannot create curve '{}'", name)));
      impl.names.push_back(name);
    }
    impl.pending.resize(curves.size());
    impl.written.assign(curves.size(), 0);
    if (!initialValues.empty()) {
      impl.pending = std::move(initialValues);
      impl.writePending();
      check(H5Fflush(root, H5F_SCOPE_LOCAL), path, "cannot flush the file");
    }

    // From here on the layout is fixed: SWMR allows only extending datasets
    // and writing into them.
    check(H5Fstart_swmr_write(root), path, "cannot start SWMR writing");
    publish(staging, path, overwrite);
  } catch (...) {
    // A half-made file would look like a trial that never ran; remove it.
    impl.datasets.clear();
    impl.file.close();
    fs::remove(staging, error);
    throw;
  }
}

TrialWriter::~TrialWriter() {
  if (!impl_ || impl_->finished) return;
  QuietErrors quiet;
  // The trial stays "running"; values it logged are still worth keeping.
  try {
    impl_->writePending();
  } catch (...) {
  }
  for (Handle& dataset : impl_->datasets) dataset.close();
  impl_->file.close();
}

std::size_t TrialWriter::curve(const std::string& name) const {
  const auto found = std::find(impl_->names.begin(), impl_->names.end(), name);
  if (found == impl_->names.end()) {
    std::string known;
    for (const std::string& declared : impl_->names)
      known += (known.empty() ? "" : ", ") + declared;
    fail(impl_->path, fmt::format("no curve '{}' was declared (declared: {})", name, known));
  }
  return static_cast<std::size_t>(found - impl_->names.begin());
}

void TrialWriter::append(std::size_t index, double value) {
  if (index >= impl_->pending.size())
    fail(impl_->path, fmt::format("curve index {} out of range ({} curves declared)", index,
                                  impl_->pending.size()));
  impl_->requireOpen("append()");
  impl_->pending[index].push_back(value);
}

void TrialWriter::flush() {
  impl_->requireOpen("flush()");
  QuietErrors quiet;
  impl_->writePending();
  check(H5Fflush(impl_->file.get(), H5F_SCOPE_LOCAL), impl_->path, "cannot flush the file");
}

void TrialWriter::finish(const std::string& status, const std::string& error,
                         const Attributes& extra) {
  Impl& impl = *impl_;
  impl.requireOpen("finish()");
  if (status != "completed" && status != "failed" && status != "paused")
    fail(impl.path,
         fmt::format("final status '{}' is not 'completed', 'failed' or 'paused'", status));
  if (error.find('\0') != std::string::npos) fail(impl.path, "error message contains a NUL byte");
  validateAttributes(extra, impl.path, "final attributes");

  flush();
  QuietErrors quiet;
  impl.finished = true;
  impl.closeFile();

  // Attributes cannot be rewritten under SWMR, so the final ones go in
  // through a plain read-write open, of a copy renamed over the file once
  // complete: a process killed in between leaves the closed, readable file
  // that says "running", never one half rewritten.
  const std::string staging = stagingName(impl.path);
  std::error_code copyError;
  fs::copy_file(impl.path, staging, fs::copy_options::overwrite_existing, copyError);
  if (copyError) {
    std::error_code ignored;
    fs::remove(staging, ignored);
    fail(impl.path,
         fmt::format("cannot copy the file to record its final status ({})", copyError.message()));
  }
  try {
    Handle fapl = fileAccess(impl.path);
    Handle file = check(H5Fopen(staging.c_str(), H5F_ACC_RDWR, fapl.get()), H5Fclose, impl.path,
                        "cannot reopen the file to record its final status");
    writeText(file.get(), "status", status, impl.path);
    writeText(file.get(), "error", error, impl.path);
    writeText(file.get(), "end_time", utcNow(), impl.path);
    writeAttributes(file.get(), extra, impl.path);
    if (!file.close())
      failHdf5(impl.path, "cannot close the file after recording its final status");
    publish(staging, impl.path, /*overwrite=*/true);
  } catch (...) {
    fs::remove(staging, copyError);
    throw;
  }
}

const std::string& TrialWriter::path() const { return impl_->path; }

// ---------------------------------------------------------------------------
// TrialReader

namespace {

/// A failure HDF5 reports while reading shows the file damaged (a
/// structural error: bad checksum, bad address, unreadable object), unless
/// it is a file lock that another process holds.
[[noreturn]] void failRead(const std::string& path, const std::string& what) {
  const Hdf5Failure failure = lastFailure();
  throw FileError(fmt::format("{}: {} ({})", path, what, failure.reason), !failure.locked);
}

Handle readCheck(hid_t id, Handle::Closer closer, const std::string& path,
                 const std::string& what) {
  if (id < 0) failRead(path, what);
  return Handle(id, closer);
}

void readCheck(herr_t status, const std::string& path, const std::string& what) {
  if (status < 0) failRead(path, what);
}

/// Opens a trial file read-only. A file whose writer is still running, or was
/// killed, still has its superblock marked as open for writing, which a plain
/// open refuses; such a file is opened as an SWMR reader instead. Neither
/// mode writes to the file.
Handle openForReading(const std::string& path, uintmax_t fileSize) {
  Handle fapl = fileAccess(path);
  const hid_t plain = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get());
  if (plain >= 0) return Handle(plain, H5Fclose);
  const Hdf5Failure first = lastFailure();
  // The SWMR open skips HDF5's end-of-file check and reads bytes past the
  // end as zeros, so a truncation the plain open found is final.
  if (first.truncated) fail(path, first.reason, /*damaged=*/true);
  // Only a writer's mark calls for the SWMR open: on damaged metadata it
  // would retry every read a hundred times (seconds per file) to no avail.
  if (!first.openForWrite)
    fail(path, fmt::format("cannot open as an HDF5 file ({})", first.reason), !first.locked);
  Handle swmr(H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl.get()), H5Fclose);
  if (!swmr.valid())
    fail(path, fmt::format("cannot open as an HDF5 file ({})", first.reason), !first.locked);
  // Belt and braces: 1.10.8's plain open checks the length before the "open
  // for writing" mark, so a truncated file never gets here.
  haddr_t used = HADDR_UNDEF;
  readCheck(H5Fget_eoa(swmr.get(), &used), path, "cannot read the file's end of allocation");
  if (used > fileSize)
    fail(path, fmt::format("truncated file: {} bytes, but {} bytes in use", fileSize, used),
         /*damaged=*/true);
  return swmr;
}

std::string readText(hid_t attribute, hid_t fileType, const std::string& name,
                     const std::string& path) {
  const std::string what = fmt::format("cannot read text attribute '{}'", name);
  Handle space = readCheck(H5Aget_space(attribute), H5Sclose, path, what);
  if (H5Sget_simple_extent_npoints(space.get()) != 1)
    fail(path, fmt::format("attribute '{}' is not a scalar", name));
  const htri_t variable = H5Tis_variable_str(fileType);
  if (variable < 0) failRead(path, what);
  Handle memoryType = readCheck(H5Tcopy(H5T_C_S1), H5Tclose, path, what);
  readCheck(H5Tset_cset(memoryType.get(), H5Tget_cset(fileType)), path, what);
  if (variable > 0) {
    readCheck(H5Tset_size(memoryType.get(), H5T_VARIABLE), path, what);
    char* data = nullptr;
    readCheck(H5Aread(attribute, memoryType.get(), &data), path, what);
    std::string value = data != nullptr ? data : "";
    H5free_memory(data);
    return value;
  }
  const std::size_t size = H5Tget_size(fileType);
  if (size == 0) failRead(path, what);
  readCheck(H5Tset_size(memoryType.get(), size), path, what);
  readCheck(H5Tset_strpad(memoryType.get(), H5T_STR_NULLPAD), path, what);
  std::string value(size, '\0');
  readCheck(H5Aread(attribute, memoryType.get(), value.data()), path, what);
  value.resize(std::strlen(value.c_str()));
  if (H5Tget_strpad(fileType) == H5T_STR_SPACEPAD) value.erase(value.find_last_not_of(' ') + 1);
  return value;
}

int64_t readInteger(hid_t attribute, const std::string& name, const std::string& path) {
  const std::string what = fmt::format("cannot read integer attribute '{}'", name);
  Handle space = readCheck(H5Aget_space(attribute), H5Sclose, path, what);
  if (H5Sget_simple_extent_npoints(space.get()) != 1)
    fail(path, fmt::format("attribute '{}' is not a scalar", name));
  int64_t value = 0;
  readCheck(H5Aread(attribute, H5T_NATIVE_INT64, &value), path, what);
  return value;
}

Attributes readAttributes(hid_t root, const std::string& path) {
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    try {
      static_cast<std::vector<std::string>*>(data)->emplace_back(name);
      return 0;
    } catch (...) {
      return -1;
    }
  };
  hsize_t position = 0;
  readCheck(H5Aiterate2(root, H5_INDEX_NAME, H5_ITER_INC, &position, collect, &names), path,
            "cannot list the root attributes");

  Attributes attributes;
  for (const std::string& name : names) {
    const std::string what = fmt::format("cannot read attribute '{}'", name);
    Handle attribute = readCheck(H5Aopen(root, name.c_str(), H5P_DEFAULT), H5Aclose, path, what);
    Handle type = readCheck(H5Aget_type(attribute.get()), H5Tclose, path, what);
    switch (H5Tget_class(type.get())) {
      case H5T_STRING:
        attributes.text[name] = readText(attribute.get(), type.get(), name, path);
        break;
      case H5T_INTEGER:
        attributes.integers[name] = readInteger(attribute.get(), name, path);
        break;
      default:
        fail(path, fmt::format("attribute '{}' is neither text nor an integer", name));
    }
  }
  return attributes;
}

std::vector<double> readCurve(hid_t dataset, const std::string& name, const std::string& path) {
  const std::string what = fmt::format("cannot read curve '{}'", name);
  Handle type = readCheck(H5Dget_type(dataset), H5Tclose, path, what);
  if (H5Tget_class(type.get()) != H5T_FLOAT)
    fail(path, fmt::format("curve '{}' is not floating point", name));
  Handle space = readCheck(H5Dget_space(dataset), H5Sclose, path, what);
  if (H5Sget_simple_extent_ndims(space.get()) != 1)
    fail(path, fmt::format("curve '{}' is not one-dimensional", name));
  hsize_t size = 0;
  readCheck(H5Sget_simple_extent_dims(space.get(), &size, nullptr), path, what);
  std::vector<double> values(size);
  if (size > 0)
    readCheck(H5Dread(dataset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
              path, what);
  return values;
}

}  // namespace

struct TrialReader::Impl {
  std::string path;
  Attributes attributes;
  std::map<std::string, std::vector<double>> curves;  ///< sorted by path
};

TrialReader::TrialReader(const std::string& path, Contents contents)
    : impl_(std::make_unique<Impl>()) {
  QuietErrors quiet;
  Impl& impl = *impl_;
  impl.path = path;

  // Distinguish the common failures before HDF5 reports them less plainly.
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) fail(path, "no such file");
  if (!fs::is_regular_file(status)) fail(path, "not a regular file");
  const uintmax_t fileSize = fs::file_size(path, error);
  if (error) fail(path, fmt::format("cannot read the file size ({})", error.message()));
  // No permission is not damage: tell it apart before HDF5 reports a failed
  // open (root reads regardless, so open() says what is true, access() not).
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) fail(path, fmt::format("cannot open for reading ({})", std::strerror(errno)));
  ::close(fd);
  if (fileSize == 0) fail(path, "empty file, not an HDF5 file", /*damaged=*/true);
  const htri_t signature = H5Fis_hdf5(path.c_str());
  if (signature == 0) fail(path, "not an HDF5 file (no HDF5 signature)", /*damaged=*/true);
  if (signature < 0) fail(path, "cannot look for the HDF5 signature");

  // Everything is read now and the file closed: a reader holds no handle
  // (nor lock) that could get in a writer's way, and a damaged file fails
  // here rather than at some later curve() call.
  Handle file = openForReading(path, fileSize);
  const hid_t root = file.get();
  impl.attributes = readAttributes(root, path);
  const auto version = impl.attributes.integers.find("schema_version");
  if (version == impl.attributes.integers.end())
    fail(path, "not a fulcrum trial file (no integer attribute 'schema_version')");
  if (version->second < 1 || version->second > kSchemaVersion)
    fail(path, fmt::format("schema_version {} is not supported (this build reads 1 to {})",
                           version->second, kSchemaVersion));
  if (contents == Contents::kAttributesOnly) {
    if (!file.close()) failRead(path, "cannot close the file");
    return;
  }

  std::vector<std::string> links;
  auto collect = [](hid_t, const char* name, const H5L_info_t* info, void* data) -> herr_t {
    if (info->type != H5L_TYPE_HARD) return 0;
    try {
      static_cast<std::vector<std::string>*>(data)->emplace_back(name);
      return 0;
    } catch (...) {
      return -1;
    }
  };
  readCheck(H5Lvisit(root, H5_INDEX_NAME, H5_ITER_INC, collect, &links), path,
            "cannot list the curves");
  for (const std::string& name : links) {
    Handle object = readCheck(H5Oopen(root, name.c_str(), H5P_DEFAULT), H5Oclose, path,
                              fmt::format("cannot open object '{}'", name));
    const H5I_type_t type = H5Iget_type(object.get());
    if (type == H5I_GROUP) continue;
    if (type != H5I_DATASET)
      fail(path, fmt::format("object '{}' is neither a group nor a curve", name));
    impl.curves[name] = readCurve(object.get(), name, path);
  }
  if (!file.close()) failRead(path, "cannot close the file");
}

TrialReader::~TrialReader() = default;

const Attributes& TrialReader::attributes() const { return impl_->attributes; }

std::string TrialReader::text(const std::string& name, const std::string& fallback) const {
  const auto found = impl_->attributes.text.find(name);
  return found == impl_->attributes.text.end() ? fallback : found->second;
}

int64_t TrialReader::integer(const std::string& name, int64_t fallback) const {
  const auto found = impl_->attributes.integers.find(name);
  return found == impl_->attributes.integers.end() ? fallback : found->second;
}

std::vector<std::string> TrialReader::curves() const {
  std::vector<std::string> names;
  names.reserve(impl_->curves.size());
  for (const auto& entry : impl_->curves) names.push_back(entry.first);
  return names;
}

bool TrialReader::hasCurve(const std::string& name) const { return impl_->curves.count(name) != 0; }

std::vector<double> TrialReader::curve(const std::string& name) const {
  const auto found = impl_->curves.find(name);
  if (found == impl_->curves.end())
    fail(impl_->path, fmt::format("no curve '{}' in the file", name));
  return found->second;
}

const std::string& TrialReader::path() const { return impl_->path; }

}  // namespace fulcrum::results
