#include "framework/regular_file.h"

#include <sys/stat.h>

namespace fulcrum {

namespace {

std::string kindOf(mode_t mode) {
  if (S_ISREG(mode)) return "";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "a special file";
}

}  // namespace

std::string nonRegularKind(const std::string& path, bool followLinks) {
  struct stat info {};
  if ((followLinks ? ::stat(path.c_str(), &info) : ::lstat(path.c_str(), &info)) != 0) return "";
  return kindOf(info.st_mode);
}

std::string nonRegularKind(int fd) {
  struct stat info {};
  if (::fstat(fd, &info) != 0) return "";
  return kindOf(info.st_mode);
}

}  // namespace fulcrum
