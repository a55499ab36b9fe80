// Reading a damaged trial file in a child process first. The HDF5 library
// (1.10) has memory errors on some damaged files — fuzzing found reads past
// a buffer while decoding a corrupted attribute — so a command that reads
// files it did not write (compare, export, report, show) lets a child take
// the risk and reads a file itself only if the child survived it.
#pragma once

#include <memory>
#include <string>

#include "results/trial_file.h"

namespace fulcrum::results {

/// Reads `path` whole (attributes and every curve, as TrialReader does) in a
/// forked child. Returns "" if reading it in this process is safe: the child
/// read it, or got the FileError that TrialReader will raise here as well.
/// Otherwise returns why not, e.g. "the HDF5 library crashed reading it
/// (signal 11, Segmentation fault)", or that it did not finish within
/// `seconds` (the child is killed then). If no child can be started the
/// file is not screened and "" is returned.
std::string screenTrialFile(const std::string& path, double seconds = 60.0);

/// What the one reading of a trial file (readTrialFile) found.
enum class TrialVerdict {
  kMissing,     ///< nothing at the path
  kReadable,    ///< read whole (a completed file's curves well formed too)
  kDamaged,     ///< shown damaged (FileError::damaged()): a rerun may replace it
  kUnreadable,  ///< cannot be read for another reason: reported, never replaced
};

/// One trial file as every command reads it.
struct TrialReading {
  TrialVerdict verdict = TrialVerdict::kMissing;
  std::string problem;  ///< why it is not readable; names the file ("" if readable)
  std::shared_ptr<const TrialReader> reader;  ///< the whole file, when readable
};

/// The one reading of a trial file that status, sweep, slurm submission,
/// run --resume, compare and export share, so that they agree on what
/// "completed" means. Screens `path` in a child (screenTrialFile, within
/// FULCRUM_SCREEN_TIMEOUT seconds, default 60; a timeout or a crash of the
/// child is kUnreadable, not damage), reads it whole, and checks that a file
/// whose status is `completed` has well-formed curves: `steps/step` and
/// `epochs/epoch` exist and every curve under `steps/`, `epochs/` and
/// `gradients/` has the length of its group's index curve (a completed file
/// that fails this is kUnreadable). A symbolic link loop or a dangling link
/// is kUnreadable. Never throws.
TrialReading readTrialFile(const std::string& path);

/// Tells the HDF5 library not to shut itself down at exit; call first thing
/// in main(). After a damaged file HDF5 keeps internal objects it cannot
/// close, and its exit-time shutdown then prints "infinite loop closing
/// library" under fulcrum's own clear message. fulcrum closes every file it
/// opens before exiting, so nothing is lost.
void skipHdf5ShutdownAtExit();

}  // namespace fulcrum::results
