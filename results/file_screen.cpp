#include "results/file_screen.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

#include <fmt/format.h>
#include <hdf5.h>

#include "results/trial_file.h"

namespace fulcrum::results {

std::string screenTrialFile(const std::string& path, double seconds) {
  const pid_t child = fork();
  if (child < 0) return "";
  if (child == 0) {
    int code = 0;
    try {
      const TrialReader reader(path);
      for (const std::string& name : reader.curves()) (void)reader.curve(name);
    } catch (const FileError&) {
      // Safe: the caller's own TrialReader raises it again, with its message.
    } catch (...) {
      code = 3;
    }
    // No atexit handlers, no flushing of the parent's buffered output or files.
    _exit(code);
  }
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (auto pause = std::chrono::microseconds(200);; pause = std::min(pause * 2, std::chrono::microseconds(20000))) {
    const pid_t done = waitpid(child, &status, WNOHANG);
    if (done == child) break;
    if (done < 0 && errno != EINTR) return "";
    if (std::chrono::steady_clock::now() > deadline) {
      kill(child, SIGKILL);
      while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
      }
      return fmt::format("the HDF5 library did not finish reading it within {} s", seconds);
    }
    std::this_thread::sleep_for(pause);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  if (WIFSIGNALED(status)) {
    return fmt::format("the HDF5 library crashed reading it (signal {}, {})", WTERMSIG(status),
                       strsignal(WTERMSIG(status)));
  }
  return fmt::format("the HDF5 library failed reading it (exit code {})", WEXITSTATUS(status));
}

void skipHdf5ShutdownAtExit() { H5dont_atexit(); }

}  // namespace fulcrum::results
