#include "results/file_screen.h"

#include <fmt/format.h>
#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <system_error>
#include <thread>

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
      return fmt::format(
          "the HDF5 library did not finish reading it within {} s (FULCRUM_SCREEN_TIMEOUT sets the "
          "limit)",
          seconds);
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

namespace {

/// The screening deadline: FULCRUM_SCREEN_TIMEOUT seconds (a slow disk may
/// need more than the default 60), or why the variable is not usable.
std::pair<double, std::string> screenSeconds() {
  const char* text = std::getenv("FULCRUM_SCREEN_TIMEOUT");
  if (text == nullptr || *text == '\0') return {60.0, ""};
  char* end = nullptr;
  const double seconds = std::strtod(text, &end);
  if (*end != '\0' || !(seconds > 0.0) || seconds > 1e6)
    return {0.0, fmt::format("FULCRUM_SCREEN_TIMEOUT='{}' is not a number of seconds in (0, 1e6]",
                             text)};
  return {seconds, ""};
}

/// Why a completed file's curves cannot serve compare and export, or "".
std::string malformedCurves(const TrialReader& reader) {
  const std::map<std::string, std::string> groups = {
      {"steps/", "steps/step"}, {"epochs/", "epochs/epoch"}, {"gradients/", "gradients/step"}};
  for (const auto& [prefix, index] : groups) {
    if (!reader.hasCurve(index)) {
      if (prefix == "gradients/") continue;  // logged without gradients
      return fmt::format("it says completed but has no curve '{}'", index);
    }
    const std::size_t length = reader.curve(index).size();
    for (const std::string& name : reader.curves()) {
      if (name.rfind(prefix, 0) != 0) continue;
      const std::size_t size = reader.curve(name).size();
      if (size != length)
        return fmt::format("it says completed but curve '{}' holds {} values where '{}' holds {}",
                           name, size, index, length);
    }
  }
  return "";
}

}  // namespace

TrialReading readTrialFile(const std::string& path) {
  namespace fs = std::filesystem;
  TrialReading reading;
  std::error_code code;
  if (!fs::exists(fs::symlink_status(path, code))) return reading;  // kMissing
  auto unreadable = [&](const std::string& why) {
    reading.verdict = TrialVerdict::kUnreadable;
    reading.problem = fmt::format("{}: {}", path, why);
    return reading;
  };
  (void)fs::status(path, code);
  if (code)
    return unreadable(code == std::errc::no_such_file_or_directory ? "a symbolic link to nothing"
                                                                   : code.message());
  const auto [seconds, badTimeout] = screenSeconds();
  if (!badTimeout.empty()) return unreadable(badTimeout);
  if (const std::string unsafe = screenTrialFile(path, seconds); !unsafe.empty())
    return unreadable(unsafe);
  try {
    auto reader = std::make_shared<const TrialReader>(path);
    if (reader->text("status") == "completed") {
      if (const std::string why = malformedCurves(*reader); !why.empty()) return unreadable(why);
    }
    reading.verdict = TrialVerdict::kReadable;
    reading.reader = std::move(reader);
  } catch (const FileError& e) {
    reading.verdict = e.damaged() ? TrialVerdict::kDamaged : TrialVerdict::kUnreadable;
    reading.problem = e.what();
  }
  return reading;
}

void skipHdf5ShutdownAtExit() { H5dont_atexit(); }

}  // namespace fulcrum::results
