// The HDF5 trial file: one file per trial, named float64 curves plus string
// and integer attributes. This folder knows nothing of training: it stores
// whatever curves the caller declares.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace fulcrum::results {

/// Version of the layout written by TrialWriter; stored as the integer root
/// attribute `schema_version`.
inline constexpr int64_t kSchemaVersion = 1;

/// Any failure to create, write, open or read a trial file. The message
/// always names the file.
class FileError : public std::runtime_error {
 public:
  /// `damaged`: see damaged().
  explicit FileError(const std::string& message, bool damaged = false)
      : std::runtime_error(message), damaged_(damaged) {}
  /// True if TrialReader showed the file damaged: HDF5 reported a structural
  /// error reading it, it is truncated, or it lacks the HDF5 signature. False
  /// for every other reason a file cannot be read (no permission, a newer
  /// schema_version, not a fulcrum trial file, a lock) and for writer errors:
  /// only a damaged file may be replaced by a rerun.
  bool damaged() const { return damaged_; }

 private:
  bool damaged_ = false;
};

/// Trial files are written as "<path>.part-<pid>" (same folder, so that the
/// final rename is atomic; a name no reader scans for) and renamed into
/// place: this returns "<path>.part-", for whoever removes the leftovers of
/// a killed writer.
std::string stagingPrefix(const std::string& path);

/// Attributes stored on the file's root group.
struct Attributes {
  std::map<std::string, std::string> text;  ///< string attributes
  std::map<std::string, int64_t> integers;  ///< integer attributes
};

/// Writes one trial file while the trial runs.
///
/// Every curve is a one-dimensional, extendible, chunked float64 dataset at a
/// slash-separated path ("steps/loss/top_left"). All datasets and attributes
/// are created in the constructor, with the text attribute `status` set to
/// "running"; the file is then switched to SWMR mode so that a process killed
/// at any moment leaves a file that TrialReader can open with every flushed
/// value in it. `finish()` records the final status.
class TrialWriter {
 public:
  /// Creates `path` (an existing file is an error unless `overwrite`), writes
  /// the attributes plus `schema_version`, `status` = "running", `end_time`
  /// = "" and `error` = "", declares the curves, writes `initialValues` (empty, or
  /// one vector of first values per curve: the curves of an earlier run that
  /// this one continues) and starts SWMR writing. The file appears under
  /// `path` only then, so a replaced file is never seen without its initial
  /// values. Throws FileError naming the path on any failure.
  TrialWriter(const std::string& path, const Attributes& attributes,
              const std::vector<std::string>& curves, bool overwrite = false,
              std::vector<std::vector<double>> initialValues = {});
  ~TrialWriter();
  TrialWriter(const TrialWriter&) = delete;
  TrialWriter& operator=(const TrialWriter&) = delete;

  /// Index of a curve declared in the constructor; throws FileError if the
  /// name was not declared.
  std::size_t curve(const std::string& name) const;
  /// Buffers `value` at the end of curve `index`. Cheap: no file I/O.
  void append(std::size_t index, double value);
  /// Writes every buffered value and flushes the file to disk.
  void flush();
  /// Flushes, leaves SWMR mode and stores `status` ("completed", "failed",
  /// or "paused": stopped at an epoch to be continued), `error`, `end_time` (UTC, ISO 8601) and
  /// `extra` attributes. After finish() only the destructor may be called.
  void finish(const std::string& status, const std::string& error, const Attributes& extra = {});
  /// Path of the file being written.
  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Reads a trial file: a finished one, or one whose writer is still running
/// or was killed (opened as an SWMR reader then).
class TrialReader {
 public:
  /// What the constructor reads into memory.
  enum class Contents {
    kEverything,      ///< attributes and every curve
    kAttributesOnly,  ///< attributes only: curves() is empty (cheap scans of a folder)
  };
  /// Opens `path` read-only; throws FileError naming the path if it is
  /// missing, not HDF5, truncated or not a fulcrum trial file, with
  /// FileError::damaged() telling damage from other reasons.
  explicit TrialReader(const std::string& path, Contents contents = Contents::kEverything);
  ~TrialReader();
  TrialReader(const TrialReader&) = delete;
  TrialReader& operator=(const TrialReader&) = delete;

  /// All root attributes (text and integer).
  const Attributes& attributes() const;
  /// A text attribute, or `fallback` if absent.
  std::string text(const std::string& name, const std::string& fallback = "") const;
  /// An integer attribute, or `fallback` if absent.
  int64_t integer(const std::string& name, int64_t fallback = 0) const;
  /// Paths of all curves in the file, sorted.
  std::vector<std::string> curves() const;
  /// True if the curve exists.
  bool hasCurve(const std::string& name) const;
  /// The values of one curve; throws FileError if it does not exist.
  std::vector<double> curve(const std::string& name) const;
  /// Path of the file.
  const std::string& path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fulcrum::results
