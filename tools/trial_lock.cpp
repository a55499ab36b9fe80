#include "tools/trial_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace fulcrum {

TrialLock::TrialLock(const std::string& resultPath) {
  // O_NOFOLLOW: a symbolic link planted at the lock's name must not make
  // fulcrum create or lock a file elsewhere.
  fd_ = ::open((resultPath + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0) {
    error_ = errno;
  } else if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) error_ = errno;
    ::close(fd_);
    fd_ = -1;
  }
}

TrialLock::~TrialLock() {
  if (fd_ >= 0) ::close(fd_);
}

bool trialLockHeld(const std::string& resultPath) {
  struct stat info {};
  if (::lstat((resultPath + ".lock").c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return false;
  std::ifstream locks("/proc/locks");
  if (!locks) throw std::runtime_error("cannot read /proc/locks to see which trials are locked");
  std::string line;
  while (std::getline(locks, line)) {
    // "1: FLOCK  ADVISORY  WRITE 6171 fe:00:5309038 0 EOF"; waiters read "1: -> FLOCK ...".
    std::istringstream fields(line);
    std::string number, type, mode, access, pid, where;
    fields >> number >> type >> mode >> access >> pid >> where;
    if (type != "FLOCK") continue;
    unsigned int major = 0, minor = 0;
    unsigned long inode = 0;
    if (std::sscanf(where.c_str(), "%x:%x:%lu", &major, &minor, &inode) != 3) continue;
    if (major == ::major(info.st_dev) && minor == ::minor(info.st_dev) && inode == info.st_ino)
      return true;
  }
  return false;
}

}  // namespace fulcrum
