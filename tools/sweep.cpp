#include "tools/sweep.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "framework/checkpoint.h"
#include "framework/halving.h"
#include "framework/regular_file.h"
#include "framework/sweep.h"
#include "results/trial_file.h"
#include "strategies/registry.h"
#include "tools/commands.h"
#include "tools/halving.h"
#include "tools/interrupt.h"
#include "tools/trial_lock.h"

namespace fulcrum {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<TrialSpec> planAndValidate(const std::string& file,
                                       const std::vector<std::string>& sets,
                                       const std::vector<std::string>& sweeps) {
  std::vector<TrialSpec> trials = planSweep(file, SweepOptions{sets, sweeps});
  for (const auto& trial : trials) {
    try {
      validateTrial(trial.spec);
    } catch (const ConfigError& e) {
      trial.rethrow(e);
    }
  }
  return trials;
}

/// True if another process holds the trial's lock now. If that cannot be
/// read, false: the child takes the lock itself and says if it is held.
bool lockedElsewhere(const std::string& resultPath) {
  try {
    return trialLockHeld(resultPath);
  } catch (const std::runtime_error&) {
    return false;
  }
}

/// The state of a sweep trial's file, checked to hold this trial.
TrialFileState trialFileState(const TrialSpec& trial) {
  const TrialIdentity identity{trial.id, trial.spec.seed};
  return readTrialState(trial.resultPath, &identity);
}

std::string clock(double seconds) {
  const long total = static_cast<long>(seconds + 0.5);
  if (total >= 3600)
    return fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
  return fmt::format("{}:{:02}", total / 60, total % 60);
}

std::string sweptValues(const TrialSpec& trial) {
  std::string text;
  for (const auto& [key, value] : trial.values)
    text += fmt::format("{}{}={}", text.empty() ? "" : " ", key, value);
  return text.empty() ? "-" : text;
}

/// A readable name of the trial: the strategy and the swept values other
/// than the seed, keys shortened to their last part ("dwa lr=1e-3"); stored
/// as the trial file's `run_name` attribute and shown in the sweep's table.
std::string runName(const TrialSpec& trial) {
  std::string name = trial.spec.strategyName;
  for (const auto& [key, value] : trial.values) {
    if (key == "seed" || key == "seeds" || key == "strategy" || key == "strategy.name") continue;
    name += fmt::format(" {}={}", key.substr(key.rfind('.') + 1), value);
  }
  return name;
}

/// "epoch 2/3" from the end of a trial's log, or "".
std::string lastEpoch(const std::string& logPath) {
  if (!nonRegularKind(logPath).empty()) return "";  // a FIFO would block the sweep
  std::ifstream in(logPath, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start = std::max<std::streamoff>(0, size - 4096);
  in.seekg(start);
  std::string tail(static_cast<std::size_t>(size - start), '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  const auto at = tail.rfind("epoch ");
  if (at == std::string::npos) return "";
  long done = 0, total = 0;
  if (std::sscanf(tail.c_str() + at, "epoch %ld/%ld", &done, &total) != 2) return "";
  return fmt::format("epoch {}/{}", done, total);
}

/// The final test metrics of a completed file, "task/metric=value ...", and the training time.
std::pair<std::string, double> finalMetrics(const std::string& path) {
  try {
    results::TrialReader reader(path);
    std::string text;
    for (const auto& curve : reader.curves()) {
      if (curve.rfind("epochs/test/", 0) != 0) continue;
      const std::string column = curve.substr(12);
      if (column.size() >= 5 && column.compare(column.size() - 5, 5, "/loss") == 0) continue;
      const std::vector<double> values = reader.curve(curve);
      if (!values.empty())
        text += fmt::format("{}{}={:.4f}", text.empty() ? "" : " ", column, values.back());
    }
    double seconds = 0.0;
    for (double s : reader.curve("epochs/seconds")) seconds += s;
    return {text.empty() ? "-" : text, seconds};
  } catch (const results::FileError&) {
    return {"-", 0.0};
  }
}

/// One trial's fate in this sweep.
struct Outcome {
  std::string status =
      "not started";  // completed, failed, crashed, interrupted, running elsewhere, not started
  std::string reason;
  bool ran = false;  // run by this sweep (not skipped)
  double seconds = 0.0;
};

/// A running child.
struct Child {
  pid_t pid = -1;
  std::size_t trial = 0;
  Clock::time_point start;
  int errFd = -1;  // the child's output before it redirects to its log
  std::string errText;
};

void drain(Child& child) {
  char buffer[4096];
  ssize_t count;
  while ((count = ::read(child.errFd, buffer, sizeof(buffer))) > 0) {
    child.errText.append(buffer, static_cast<std::size_t>(count));
    if (child.errText.size() > 8192) child.errText.erase(0, child.errText.size() - 8192);
  }
}

std::string lastLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  const auto newline = text.rfind('\n');
  return newline == std::string::npos ? text : text.substr(newline + 1);
}

std::string selfExecutable() {
  std::error_code code;
  const fs::path self = fs::read_symlink("/proc/self/exe", code);
  if (code) throw std::runtime_error("cannot find the fulcrum executable: " + code.message());
  return self.string();
}

/// Starts `fulcrum run-trial` for one trial; its stdout and stderr go to a pipe
/// until it has its lock and switches to <result>.log.
Child launch(const std::string& executable, const SweepCommandOptions& options, std::size_t index,
             int threads, int64_t pauseAfter) {
  std::vector<std::string> args = {executable,
                                   "run-trial",
                                   options.experiment,
                                   "--index",
                                   std::to_string(index),
                                   "--threads",
                                   std::to_string(threads),
                                   "--log"};
  if (pauseAfter > 0) args.insert(args.end(), {"--pause-after", std::to_string(pauseAfter)});
  for (const auto& set : options.sets) args.insert(args.end(), {"--set", set});
  for (const auto& sweep : options.sweeps) args.insert(args.end(), {"--sweep", sweep});
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0)
    throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    ::dup2(pipeFds[1], STDOUT_FILENO);
    ::dup2(pipeFds[1], STDERR_FILENO);
    ::execv(executable.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(pipeFds[1]);
  ::fcntl(pipeFds[0], F_SETFL, O_NONBLOCK);
  Child child;
  child.pid = pid;
  child.trial = index;
  child.start = Clock::now();
  child.errFd = pipeFds[0];
  return child;
}

/// The outcome of a child that ended with wait status `status`.
Outcome outcomeOf(const Child& child, int status, const TrialSpec& trial, int stopSignalSent) {
  Outcome outcome;
  outcome.ran = true;
  outcome.seconds = std::chrono::duration<double>(Clock::now() - child.start).count();
  const TrialFileState file = trialFileState(trial);
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    outcome.status =
        stopSignalSent != 0 && (signal == SIGINT || signal == SIGTERM) ? "interrupted" : "crashed";
    outcome.reason = fmt::format("killed by signal {} ({})", signal, strsignal(signal));
    return outcome;
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == kExitRunningElsewhere) {
    outcome.status = "running elsewhere";
    outcome.reason = "another process holds " + trial.resultPath + ".lock";
  } else if (code == 0 && (file.status == "completed" || file.status == "paused")) {
    outcome.status = file.status;
  } else if (file.status == "interrupted") {
    outcome.status = "interrupted";
    outcome.reason = file.error;
  } else if (file.status == "failed") {
    outcome.status = "failed";
    outcome.reason = file.error;
  } else if (file.status == "unreadable" || file.status == "foreign" ||
             (file.status == "damaged" && code == 0)) {
    // What the file is now matters more than how the child ended (a trial
    // that completed but cannot be read back is no "exit code 0" failure).
    outcome.status = file.status;
    outcome.reason = file.error;
    if (code != 0) outcome.reason += fmt::format(" (the trial exited with code {})", code);
  } else {
    outcome.status = "failed";
    const std::string said = lastLine(child.errText);
    std::string logged;
    {
      std::ifstream in;
      if (nonRegularKind(trial.resultPath + ".log").empty()) in.open(trial.resultPath + ".log");
      std::string line;
      while (std::getline(in, line)) {
        if (line.rfind("fulcrum: ", 0) == 0) logged = line;
      }
    }
    outcome.reason = fmt::format("exit code {}{}", code,
                                 !logged.empty() ? ": " + logged
                                 : said.empty()  ? ""
                                                 : ": " + said);
    // A full disk may also have swallowed the trial's own message (its log).
    const std::string note = noSpaceNote(fs::path(trial.resultPath).parent_path());
    if (outcome.reason.find("no space left") == std::string::npos) outcome.reason += note;
  }
  return outcome;
}

class Progress {
 public:
  Progress(std::size_t total, int jobs)
      : total_(total), jobs_(jobs), tty_(::isatty(STDOUT_FILENO) != 0) {}

  /// The jobs known so far (a halving sweep hands them out rung by rung).
  void setTotal(std::size_t total) { total_ = total; }

  /// A permanent line (clears the status line first on a TTY).
  void line(const std::string& text) {
    if (tty_) std::cout << "\r\x1b[K";
    std::cout << text << std::endl;
    shown_ = false;
  }

  void update(std::size_t done, std::size_t failed, const std::vector<Child>& running,
              const std::vector<TrialSpec>& trials, std::size_t left, double averageSeconds,
              bool force) {
    const auto now = Clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    if (!force && since < (tty_ ? 0.5 : 10.0)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    std::string eta = "?";
    if (averageSeconds > 0.0) {
      eta = clock(averageSeconds *
                  (static_cast<double>(left) + 0.5 * static_cast<double>(running.size())) / jobs_);
    } else if (left == 0 && running.empty()) {
      eta = "0:00";
    }
    std::string text =
        fmt::format("sweep: {}/{} done, {} running, {} failed, {} left | elapsed {} | ETA {}", done,
                    total_, running.size(), failed, left, clock(elapsed), eta);
    for (const auto& child : running) {
      const std::string epoch = lastEpoch(trials[child.trial].resultPath + ".log");
      text += fmt::format(" | #{} {}", child.trial, epoch.empty() ? "starting" : epoch);
    }
    if (tty_) {
      std::cout << "\r\x1b[K" << text << std::flush;
      shown_ = true;
    } else {
      std::cout << text << std::endl;
    }
  }

  void end() {
    if (tty_ && shown_) std::cout << "\r\x1b[K" << std::flush;
  }

 private:
  std::size_t total_;
  int jobs_;
  bool tty_;
  bool shown_ = false;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_{};
};

void printTable(const std::vector<TrialSpec>& trials, const std::vector<Outcome>& outcomes) {
  std::size_t nameWidth = 12;  // the run name: strategy and swept values
  for (const TrialSpec& trial : trials) nameWidth = std::max(nameWidth, runName(trial).size());
  std::cout << fmt::format("{:>4}  {:<12}  {:<{}}  {:>4}  {:<18}  {:>8}  {}\n", "#", "id", "run",
                           nameWidth, "seed", "status", "time", "final test metrics");
  for (std::size_t i = 0; i < trials.size(); ++i) {
    const TrialSpec& trial = trials[i];
    const Outcome& outcome = outcomes[i];
    auto [metrics, fileSeconds] = finalMetrics(trial.resultPath);
    const bool kept = !outcome.ran && (outcome.status == "completed" || outcome.status == "paused");
    const std::string status = kept ? outcome.status + " (kept)" : outcome.status;
    const double seconds = outcome.ran ? outcome.seconds : fileSeconds;
    std::string detail = outcome.status == "completed" ? metrics : "-";
    if (outcome.status == "paused")
      detail = trialFileState(trial).error;  // "paused after epoch E of N"
    std::cout << fmt::format("{:>4}  {:<12}  {:<{}}  {:>4}  {:<18}  {:>8}  {}\n", i, trial.id,
                             runName(trial), nameWidth, trial.spec.seed, status,
                             seconds > 0 ? clock(seconds) : "-", detail);
  }
}

}  // namespace

std::vector<TrialSpec> planAndValidateSweep(const std::string& file,
                                            const std::vector<std::string>& sets,
                                            const std::vector<std::string>& sweeps) {
  return planAndValidate(file, sets, sweeps);
}

std::string fulcrumExecutable() { return selfExecutable(); }

int runTrialCommand(const RunTrialOptions& options) {
  // From the start, so that a stop during planning or data loading still
  // ends in a marked file rather than a process killed mid-write.
  installStopHandlers();
  std::vector<TrialSpec> trials;
  try {
    trials = planAndValidate(options.experiment, options.sets, options.sweeps);
  } catch (const ConfigError& e) {
    return reportError(e.what());
  }
  if (options.index >= trials.size()) {
    return reportError(
        fmt::format("--index {} is out of range: the sweep of {} has {} trials (0 to {})",
                    options.index, options.experiment, trials.size(), trials.size() - 1));
  }
  const TrialSpec& trial = trials[options.index];
  if (options.pauseAfter < 0)
    return reportError(
        fmt::format("--pause-after {} is out of range: must be >= 0", options.pauseAfter));
  std::error_code code;
  fs::create_directories(fs::path(trial.resultPath).parent_path(), code);
  if (code)
    return reportError(
        fmt::format("cannot create folder for '{}': {}", trial.resultPath, code.message()));
  const TrialLock lock(trial.resultPath);
  if (!lock.held() && lock.error() != 0) {
    return reportError(fmt::format("cannot create the lock file '{}.lock': {}", trial.resultPath,
                                   std::strerror(lock.error())));
  }
  if (!lock.held()) {
    std::cerr << fmt::format("fulcrum: trial {} ({}) is running elsewhere: {}.lock is held\n",
                             options.index, trial.id, trial.resultPath);
    return kExitRunningElsewhere;
  }
  // Staging files of a writer that was killed (result file, checkpoint or
  // saved model); under the lock nobody else is writing this trial.
  {
    const fs::path result(trial.resultPath);
    std::vector<std::string> prefixes = {
        results::stagingPrefix(result.string()),
        checkpointStagingPrefix(checkpointPathOf(result.string()))};
    for (const char* which : {".final.pt", ".best.pt"})
      prefixes.push_back(checkpointStagingPrefix(modelPathOf(result.string()) + which));
    for (std::string& prefix : prefixes) prefix = fs::path(prefix).filename().string();
    std::error_code listError;
    const fs::path folder = result.parent_path().empty() ? fs::path(".") : result.parent_path();
    for (const auto& entry : fs::directory_iterator(folder, listError)) {
      const std::string name = entry.path().filename().string();
      for (const std::string& prefix : prefixes) {
        if (name.rfind(prefix, 0) == 0) {
          fs::remove(entry.path(), listError);
          break;
        }
      }
    }
  }
  const TrialFileState state = trialFileState(trial);
  if (state.status == "completed") {
    std::cout << fmt::format("trial {} ({}) is already completed: {}\n", options.index, trial.id,
                             trial.resultPath);
    return 0;
  }
  // Only a file shown damaged may be redone; this one is reported and left alone.
  if (state.status == "unreadable" || state.status == "foreign")
    return reportError(
        fmt::format("trial {} ({}) not run: {}", options.index, trial.id, state.error));
  if (options.log) {
    const std::string logPath = trial.resultPath + ".log";
    // Never through a symbolic link (its target would be overwritten), never
    // onto a FIFO or a device (the open would wait, or the device be written).
    if (const std::string kind = nonRegularKind(logPath, /*followLinks=*/false); !kind.empty()) {
      if (kind == "a symbolic link")
        return reportError(fmt::format(
            "cannot write '{}': it is a symbolic link, which fulcrum does not follow; remove it",
            logPath));
      return reportError(fmt::format(
          "cannot write '{}': it is {}; fulcrum replaces only regular files", logPath, kind));
    }
    const int fd = ::open(logPath.c_str(),
                          O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ELOOP)
      return reportError(fmt::format(
          "cannot write '{}': it is a symbolic link, which fulcrum does not follow; remove it",
          logPath));
    if (fd < 0)
      return reportError(fmt::format("cannot write '{}': {}", logPath, std::strerror(errno)));
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    std::cout.flush();
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  std::cout << fmt::format("fulcrum run-trial: trial {} of {} ({}), id {}: {}", options.index,
                           trials.size(), options.experiment, trial.id, sweptValues(trial))
            << std::endl;
  if (stopSignal() != 0) {
    std::cerr << fmt::format("fulcrum: trial {} not started: {}\n", options.index,
                             strsignal(stopSignal()));
    return 128 + stopSignal();
  }
  RunOptions run;
  run.experiment = options.experiment;
  run.overrides = trial.overrides;
  if (options.threads > 0)
    run.overrides.push_back(fmt::format("train.threads={}", options.threads));
  run.out = trial.resultPath;
  run.runName = runName(trial);
  // Running (killed), interrupted, failed (with --retry-failed) or unreadable:
  // continue from the checkpoint if the trial left one, otherwise start afresh
  // (--resume replaces the file either way, so --overwrite is not needed).
  run.resume = true;
  run.lockHeld = true;
  if (options.pauseAfter < trial.spec.train.epochs) run.pauseAfter = options.pauseAfter;
  return runCommand(run);
}

int sweepCommand(const SweepCommandOptions& options) {
  std::vector<TrialSpec> trials;
  std::optional<HalvingSpec> halvingSpec;
  try {
    trials = planAndValidate(options.experiment, options.sets, options.sweeps);
    halvingSpec = readSweepHalving(options.experiment, trials);
  } catch (const ConfigError& e) {
    return reportError(e.what());
  }
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  if (options.jobs < 0)
    return reportError(fmt::format("--jobs {} is out of range: must be >= 0", options.jobs));
  const int jobs = options.jobs > 0 ? options.jobs : cores;
  const int threads = std::max(1, cores / jobs);  // per trial, so that jobs × threads <= cores

  if (options.dryRun) {
    std::cout << fmt::format("{:>4}  {:<12}  {:<12}  {:>4}  {:<12}  {}\n", "#", "id", "strategy",
                             "seed", "file", "swept values");
    for (const auto& trial : trials) {
      std::cout << fmt::format("{:>4}  {:<12}  {:<12}  {:>4}  {:<12}  {}\n", trial.index, trial.id,
                               trial.spec.strategyName, trial.spec.seed,
                               trialFileState(trial).status, sweptValues(trial));
    }
    std::cout << fmt::format(
        "{} trials; --jobs {} would run {} at a time with at most {} thread(s) each\n",
        trials.size(), jobs, std::min<std::size_t>(jobs, trials.size()), threads);
    if (halvingSpec && !options.noHalving) {
      std::cout << fmt::format(
          "successive halving ({}): {} configurations, rungs at epochs {}, keeping 1/{} at each\n",
          halvingSpec->asynchronous ? "asynchronous: ASHA" : "synchronous",
          configurationGroups(trials).size(), fmt::join(halvingSpec->rungs, ", "),
          halvingSpec->eta);
    }
    return 0;
  }

  std::string executable;
  try {
    executable = selfExecutable();
    // Every output folder must take a file before any trial runs; otherwise
    // each trial would fail alike (or its lock look held elsewhere).
    std::vector<fs::path> checked;
    for (const auto& trial : trials) {
      const fs::path folder = fs::path(trial.resultPath).parent_path();
      if (std::find(checked.begin(), checked.end(), folder) != checked.end()) continue;
      checked.push_back(folder);
      try {
        prepareOutputFolder(folder.empty() ? fs::path(".") : folder);
      } catch (const std::runtime_error& e) {
        trial.rethrow(errorAtKey(trial.spec, "output", e.what()));
      }
    }
  } catch (const std::exception& e) {
    return reportError(e.what());
  }
  std::unique_ptr<HalvingRun> halving;
  std::string halvingError;  // the record could not be written: the sweep ends
  if (halvingSpec && !options.noHalving) {
    try {
      halving = std::make_unique<HalvingRun>(trials, *halvingSpec, options.retryFailed);
    } catch (const std::exception& e) {
      return reportError(e.what());
    }
    if (const std::string problem = halving->lock(); !problem.empty())
      return reportError(problem, 1);
  }

  installStopHandlers();
  // A closed stdout (`fulcrum sweep ... | head -1`) must not kill the runner
  // and leave its trials stale: the failed write stops the sweep instead.
  std::signal(SIGPIPE, SIG_IGN);
  std::cout << fmt::format(
                   "fulcrum sweep: {} trials of {}, {} at a time, at most {} thread(s) each; logs "
                   "next to the "
                   "results (<file>.log)",
                   trials.size(), options.experiment, jobs, threads)
            << std::endl;
  std::vector<Outcome> outcomes(trials.size());
  std::deque<SweepJob> queue;
  if (!halving)
    for (std::size_t i = 0; i < trials.size(); ++i) queue.push_back({i, 0});
  std::size_t handedOut = queue.size();
  bool ask = halving != nullptr;  // a halving sweep is asked for jobs when something ended
  std::vector<Child> running;
  Progress progress(trials.size(), jobs);
  std::size_t done = 0, failed = 0, ranCount = 0;
  double ranSeconds = 0.0;
  int stopSent = 0;

  auto finish = [&](std::size_t index, const Outcome& outcome) {
    outcomes[index] = outcome;
    const TrialSpec& trial = trials[index];
    if (outcome.status == "completed" || outcome.status == "paused") {
      ++done;
    } else {
      ++failed;
    }
    if (outcome.ran && (outcome.status == "completed" || outcome.status == "paused")) {
      ++ranCount;
      ranSeconds += outcome.seconds;
    }
    std::string what = outcome.status;
    if (!outcome.ran)
      what = "skipped (" + outcome.status + (outcome.status == "completed" ? " already" : "") + ")";
    progress.line(fmt::format("[{}/{}] #{} {} {} seed {}: {}{}{}", done + failed, handedOut, index,
                              trial.id, trial.spec.strategyName, trial.spec.seed, what,
                              outcome.ran ? " in " + clock(outcome.seconds) : "",
                              outcome.reason.empty() ? "" : " — " + outcome.reason));
    if (halving) {
      halving->ended(index);
      ask = true;
    }
  };

  bool outputLost = false;
  while (true) {
    const int signal = stopSignal();
    if (signal != 0 && stopSent == 0) {
      stopSent = signal;
      progress.line(fmt::format("fulcrum sweep: {} received, stopping {} running trial(s)",
                                strsignal(signal), running.size()));
      for (const auto& child : running) ::kill(child.pid, signal);
      queue.clear();
    }
    if (!std::cout && stopSent == 0) {
      // As SIGTERM would: the running trials end interrupted (resumable).
      stopSent = SIGTERM;
      outputLost = true;
      std::cerr << fmt::format(
          "fulcrum sweep: cannot write to standard output (closed pipe?); stopping {} running "
          "trial(s), which end interrupted (a rerun resumes them)\n",
          running.size());
      for (const auto& child : running) ::kill(child.pid, SIGTERM);
      queue.clear();
    }
    if (halving && ask && queue.empty() && stopSent == 0 &&
        static_cast<int>(running.size()) < jobs) {
      ask = false;
      try {
        for (const SweepJob& job : halving->next(running.size())) queue.push_back(job);
      } catch (const std::exception& e) {
        // The record cannot be written: no further rung is started.
        progress.line(fmt::format("fulcrum sweep: {}; no further trial is started", e.what()));
        halvingError = e.what();
        halving->stop();
      }
      handedOut += queue.size();
      progress.setTotal(handedOut);
    }
    while (stopSent == 0 && !queue.empty() && static_cast<int>(running.size()) < jobs) {
      const SweepJob job = queue.front();
      const std::size_t index = job.trial;
      queue.pop_front();
      const TrialSpec& trial = trials[index];
      const TrialFileState state = trialFileState(trial);
      Outcome skipped;
      if (state.status == "completed") {
        skipped.status = "completed";
        finish(index, skipped);
        continue;
      }
      // Never replace what is not shown damaged: report it and leave it alone.
      if (state.status == "unreadable" || state.status == "foreign") {
        skipped.status = state.status;
        skipped.reason =
            state.error +
            (state.status == "foreign" ? "" : " (left alone: only a damaged file is redone)");
        finish(index, skipped);
        continue;
      }
      if (state.status == "failed" && !options.retryFailed) {
        skipped.status = "failed";
        skipped.reason = state.error + " (kept; --retry-failed reruns it)";
        finish(index, skipped);
        continue;
      }
      if (lockedElsewhere(trial.resultPath)) {
        skipped.status = "running elsewhere";
        skipped.reason = "another process holds " + trial.resultPath + ".lock";
        finish(index, skipped);
        continue;
      }
      try {
        // The split is a budget: a trial asking for fewer threads (0 reads as 1,
        // measured fastest here) keeps its own count.
        const int trialThreads = static_cast<int>(
            std::min<int64_t>(std::max<int64_t>(1, trial.spec.train.threads), threads));
        running.push_back(launch(executable, options, index, trialThreads, job.pauseAfter));
      } catch (const std::exception& e) {
        Outcome broken;
        broken.status = "failed";
        broken.reason = e.what();
        finish(index, broken);
      }
    }
    for (auto it = running.begin(); it != running.end();) {
      drain(*it);
      int status = 0;
      const pid_t result = ::waitpid(it->pid, &status, WNOHANG);
      if (result == it->pid) {
        drain(*it);
        ::close(it->errFd);
        const std::size_t index = it->trial;
        const Outcome outcome = outcomeOf(*it, status, trials[index], stopSent);
        it = running.erase(it);
        finish(index, outcome);
      } else {
        ++it;
      }
    }
    const bool asking = halving && ask && stopSent == 0;
    if (queue.empty() && running.empty() && !asking) break;
    progress.update(done, failed, running, trials, queue.size(),
                    ranCount ? ranSeconds / ranCount : 0.0, false);
    if (!asking || !queue.empty() || !running.empty())
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  progress.end();

  // Trials this sweep did not run (a halving sweep's configurations that
  // were not promoted, or were done earlier) are reported as their files are.
  for (std::size_t i = 0; i < trials.size(); ++i) {
    if (outcomes[i].ran || outcomes[i].status != "not started") continue;
    const TrialFileState now = trialFileState(trials[i]);
    if (now.status == "missing") continue;
    outcomes[i].status = now.status;
    outcomes[i].reason = now.error;
  }

  // The files, not this sweep's memory, say what is completed: a file gone
  // or changed since its trial ended (its folder deleted mid-run) is
  // reported as it is now.
  for (std::size_t i = 0; i < trials.size(); ++i) {
    if (outcomes[i].status != "completed" && outcomes[i].status != "paused") continue;
    const TrialFileState now = trialFileState(trials[i]);
    if (now.status == outcomes[i].status) continue;
    outcomes[i].reason =
        fmt::format("{} earlier in this sweep, but the file is now {}{}", outcomes[i].status,
                    now.status, now.error.empty() ? "" : ": " + now.error);
    outcomes[i].status = now.status;
  }

  std::cout << "\n";
  printTable(trials, outcomes);
  std::size_t completed = 0;
  std::vector<std::size_t> problems;
  std::size_t paused = 0;
  for (std::size_t i = 0; i < trials.size(); ++i) {
    if (outcomes[i].status == "completed") {
      ++completed;
    } else if (outcomes[i].status == "paused" && halving) {
      ++paused;  // stopped at its rung: the halving's doing, not a problem
    } else {
      problems.push_back(i);
    }
  }
  std::cout << fmt::format("{} of {} trials completed{}\n", completed, trials.size(),
                           halving ? fmt::format(", {} paused at a rung", paused) : "");
  if (!problems.empty()) {
    std::cout << "not completed:\n";
    for (std::size_t i : problems) {
      std::cout << fmt::format("  #{} {} {} seed {} ({}): {}{}\n   file {}\n", i, trials[i].id,
                               trials[i].spec.strategyName, trials[i].spec.seed,
                               sweptValues(trials[i]), outcomes[i].status,
                               outcomes[i].reason.empty() ? "" : ": " + outcomes[i].reason,
                               trials[i].resultPath);
    }
  }
  bool halvingFinished = true;
  try {
    if (halving) {
      halving->printSummary(std::cout, options.experiment, /*record=*/halvingError.empty());
      halvingFinished = halving->finished();
    } else if (halvingSpec) {
      // --no-halving: the full grid, and how the halving's pick ranks in it.
      HalvingRun view(trials, *halvingSpec, false);
      if (fs::exists(view.recordPath())) view.printSummary(std::cout, options.experiment, false);
    }
  } catch (const std::exception& e) {
    std::cerr << "fulcrum: " << e.what() << "\n";
    halvingFinished = false;
  }
  if (!halvingError.empty()) std::cerr << "fulcrum: " << halvingError << "\n";
  if (outputLost) return 128 + SIGPIPE;
  if (stopSent != 0) return 128 + stopSent;
  return problems.empty() && halvingFinished ? 0 : 1;
}

}  // namespace fulcrum
