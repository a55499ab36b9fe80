// Reading a damaged trial file in a child process first. The HDF5 library
// (1.10) has memory errors on some damaged files — fuzzing found reads past
// a buffer while decoding a corrupted attribute — so a command that reads
// files it did not write (compare, export, report, show) lets a child take
// the risk and reads a file itself only if the child survived it.
#pragma once

#include <string>

namespace fulcrum::results {

/// Reads `path` whole (attributes and every curve, as TrialReader does) in a
/// forked child. Returns "" if reading it in this process is safe: the child
/// read it, or got the FileError that TrialReader will raise here as well.
/// Otherwise returns why not, e.g. "the HDF5 library crashed reading it
/// (signal 11, Segmentation fault)", or that it did not finish within
/// `seconds` (the child is killed then). If no child can be started the
/// file is not screened and "" is returned.
std::string screenTrialFile(const std::string& path, double seconds = 60.0);

/// Tells the HDF5 library not to shut itself down at exit; call first thing
/// in main(). After a damaged file HDF5 keeps internal objects it cannot
/// close, and its exit-time shutdown then prints "infinite loop closing
/// library" under fulcrum's own clear message. fulcrum closes every file it
/// opens before exiting, so nothing is lost.
void skipHdf5ShutdownAtExit();

}  // namespace fulcrum::results
