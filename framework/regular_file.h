// Regular files only: fulcrum reads its inputs from regular files and
// replaces nothing but a regular file. A FIFO or a device opened for reading
// blocks forever (deaf to SIGTERM, since the signal handlers restart the
// call), and renaming over one replaces a device node with a plain file.
#pragma once

#include <string>

namespace fulcrum {

/// What stands at `path` when it is not a regular file: "a directory",
/// "a FIFO", "a character device", "a block device", "a socket", or — with
/// `followLinks` false, for outputs — "a symbolic link". "" for a regular
/// file (through symbolic links when `followLinks`), for nothing at all, and
/// when `path` cannot be examined (the open that follows says why). Never
/// opens `path`, so it never blocks.
std::string nonRegularKind(const std::string& path, bool followLinks = true);

/// The same for the file open as `fd` ("" if fstat fails).
std::string nonRegularKind(int fd);

}  // namespace fulcrum
