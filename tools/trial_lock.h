// The per-trial lock: an exclusive flock on `<result file>.lock`, held by
// whoever writes the trial (`fulcrum run`, a sweep's `run-trial` child, a
// Slurm array task) for the whole trial, so that two writers never share a
// file and `fulcrum status` can tell a live trial from a crashed one.
#pragma once

#include <string>

namespace fulcrum {

/// An exclusive, non-blocking flock on `<resultPath>.lock` (created if
/// needed, never through a symbolic link), held until destruction or
/// process exit.
class TrialLock {
 public:
  /// Tries to take the lock; see held() and error().
  explicit TrialLock(const std::string& resultPath);
  ~TrialLock();
  TrialLock(const TrialLock&) = delete;
  TrialLock& operator=(const TrialLock&) = delete;
  /// True if this object holds the lock.
  bool held() const { return fd_ >= 0; }
  /// Why the lock could not be taken, other than another holder (an errno
  /// value; 0 if none, i.e. not held() means another process holds it).
  int error() const { return error_; }

 private:
  int fd_ = -1;
  int error_ = 0;
};

/// True if a live process of this machine holds the lock of `resultPath`.
/// Read from /proc/locks rather than by trying the lock: a try-lock, however
/// brief, could make a trial starting at that moment believe it runs
/// elsewhere. Throws std::runtime_error if /proc/locks cannot be read.
bool trialLockHeld(const std::string& resultPath);

}  // namespace fulcrum
