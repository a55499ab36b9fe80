#include "tools/slurm.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "framework/halving.h"
#include "framework/sweep.h"
#include "results/trial_file.h"
#include "tools/commands.h"
#include "tools/halving.h"
#include "tools/trial_lock.h"

extern char** environ;

namespace fulcrum {

namespace fs = std::filesystem;

namespace {

/// A trial's state as `fulcrum status` reports it.
struct TrialState {
  // completed, paused, running, failed, interrupted, stale, damaged, unreadable, foreign,
  // not started
  std::string state;
  std::string detail;
};

const std::vector<std::string> kStates = {"completed",   "paused",     "running", "failed",
                                          "interrupted", "stale",      "damaged", "unreadable",
                                          "foreign",     "not started"};

/// The identity a sweep's file name promises ("<name>-<strategy>-seed<S>-<id>.h5"),
/// or none for a name of another form (a `run --out` file).
std::optional<TrialIdentity> identityFromName(const std::string& path) {
  static const std::regex pattern("-seed([0-9]{1,19})-([0-9a-f]{12})$");
  std::smatch match;
  const std::string stem = fs::path(path).stem().string();
  if (!std::regex_search(stem, match, pattern)) return std::nullopt;
  try {
    return TrialIdentity{match[2].str(), std::stoull(match[1].str())};
  } catch (const std::out_of_range&) {
    return std::nullopt;
  }
}

TrialState trialState(const std::string& resultPath, const std::optional<TrialIdentity>& expected) {
  const bool held = trialLockHeld(resultPath);
  const TrialFileState file = readTrialState(resultPath, expected ? &*expected : nullptr);
  if (file.status == "foreign") return {"foreign", file.error};
  if (file.status == "missing")
    return held ? TrialState{"running", "starting (lock held, no file yet)"}
                : TrialState{"not started", ""};
  if (file.status == "completed") return {"completed", ""};
  if (file.status == "failed") return {"failed", file.error};
  if (file.status == "interrupted") return {"interrupted", file.error + " (a rerun redoes it)"};
  if (file.status == "paused")
    return {"paused", file.error + " (successive halving: a rerun continues it if it is promoted)"};
  if (file.status == "running") {
    if (!held)
      return {"stale",
              "the file says running but no process holds its lock: the writer crashed or was "
              "killed (a rerun redoes it)"};
    std::size_t epochs = 0;
    try {
      epochs = results::TrialReader(resultPath).curve("epochs/epoch").size();
    } catch (const results::FileError&) {
      // Being created: no epoch yet.
    }
    return {"running", fmt::format("{} epoch(s) done", epochs)};
  }
  if (held) return {"running", "starting (file not readable yet)"};
  if (file.status == "damaged") return {"damaged", file.error + " (a rerun redoes it)"};
  return {"unreadable", file.error + " (not shown damaged: a rerun leaves it alone)"};
}

/// `text` quoted for a POSIX shell.
std::string shellQuote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

/// "0-3,5,7-9" from sorted indices.
std::string indexRanges(const std::vector<std::size_t>& indices) {
  std::string text;
  for (std::size_t i = 0; i < indices.size();) {
    std::size_t j = i;
    while (j + 1 < indices.size() && indices[j + 1] == indices[j] + 1) ++j;
    text += fmt::format("{}{}", text.empty() ? "" : ",", indices[i]);
    if (j > i) text += fmt::format("-{}", indices[j]);
    i = j + 1;
  }
  return text;
}

std::string findOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream folders(path ? path : "");
  std::string folder;
  while (std::getline(folders, folder, ':')) {
    const std::string candidate = (folder.empty() ? "." : folder) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

struct Captured {
  int code = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Runs `args` (args[0] a path) and returns its exit code, stdout and stderr.
Captured capture(const std::vector<std::string>& args) {
  const std::string base = (fs::temp_directory_path() / "fulcrum-sbatch-XXXXXX").string();
  std::vector<char> outName(base.begin(), base.end()), errName(base.begin(), base.end());
  outName.push_back('\0');
  errName.push_back('\0');
  const int outFd = ::mkstemp(outName.data());
  const int errFd = ::mkstemp(errName.data());
  if (outFd < 0 || errFd < 0)
    throw std::runtime_error(
        fmt::format("cannot create a temporary file: {}", std::strerror(errno)));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, outFd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, errFd, STDERR_FILENO);
  std::vector<std::string> copies = args;
  std::vector<char*> argv;
  for (auto& arg : copies) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(outFd);
  ::close(errFd);
  Captured result;
  if (spawned == 0) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  } else {
    result.err = fmt::format("cannot run {}: {}", args[0], std::strerror(spawned));
  }
  result.out = slurp(outName.data());
  result.err += slurp(errName.data());
  ::unlink(outName.data());
  ::unlink(errName.data());
  return result;
}

std::string trim(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  std::size_t start = 0;
  while (start < text.size() && std::isspace(static_cast<unsigned char>(text[start]))) ++start;
  return text.substr(start);
}

/// Submits `script` with `sbatch --parsable [extra]`; returns the job id or
/// throws std::runtime_error with sbatch's stderr.
std::string submit(const std::string& sbatch, const std::string& script,
                   const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {sbatch, "--parsable"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(script);
  const Captured result = capture(args);
  // --parsable prints "JOBID" or "JOBID;CLUSTER".
  const std::string id = trim(result.out.substr(0, result.out.find(';')));
  const bool numeric = !id.empty() && id.find_first_not_of("0123456789") == std::string::npos;
  if (result.code != 0 || !numeric) {
    throw std::runtime_error(
        fmt::format("sbatch failed for {} (exit code {}): {}", script, result.code,
                    trim(result.err).empty() ? "stdout: " + trim(result.out) : trim(result.err)));
  }
  return id;
}

std::string utcStamp() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  ::gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof(text), "%Y%m%dT%H%M%SZ", &parts);
  return text;
}

/// `<folder>/<stem>.sbatch`, or `<stem>-2.sbatch`... if taken.
fs::path freshPath(const fs::path& folder, const std::string& stem) {
  fs::path path = folder / (stem + ".sbatch");
  for (int n = 2; fs::exists(path); ++n) path = folder / fmt::format("{}-{}.sbatch", stem, n);
  return path;
}

void writeScript(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) throw std::runtime_error(fmt::format("cannot write '{}'", path.string()));
}

/// A value placed on an `#SBATCH` line: no spaces, quotes or line breaks.
bool plainValue(const std::string& value) {
  return value.find_first_of(" \t\r\n'\"\\#$`") == std::string::npos;
}

}  // namespace

int slurmSweepCommand(const SweepCommandOptions& sweep, const SlurmOptions& slurm) {
  if (slurm.arrayParallelism < 0)
    return reportError(
        fmt::format("--array-parallelism {} is out of range: must be >= 0 (0: no limit)",
                    slurm.arrayParallelism));
  if (slurm.cpusPerTask < 1)
    return reportError(
        fmt::format("--cpus-per-task {} is out of range: must be >= 1", slurm.cpusPerTask));
  if (!plainValue(slurm.partition))
    return reportError(fmt::format("--partition '{}': spaces, quotes and '#$`\\' are not allowed",
                                   slurm.partition));
  if (!plainValue(slurm.time))
    return reportError(
        fmt::format("--time '{}': spaces, quotes and '#$`\\' are not allowed", slurm.time));
  if (sweep.jobs != 0)
    return reportError(fmt::format(
        "--jobs {} is for the local launcher; with --launcher slurm use --array-parallelism",
        sweep.jobs));

  std::vector<TrialSpec> trials;
  std::optional<HalvingSpec> halvingSpec;
  try {
    trials = planAndValidateSweep(sweep.experiment, sweep.sets, sweep.sweeps);
    halvingSpec = readSweepHalving(sweep.experiment, trials);
    if (halvingSpec && sweep.noHalving) halvingSpec.reset();
    if (halvingSpec && halvingSpec->asynchronous)
      throw ConfigError(halvingSpec->file, halvingSpec->line, halvingSpec->column,
                        "sweep.halving.asynchronous",
                        "asynchronous halving (ASHA) runs on the local launcher only; with "
                        "--launcher slurm halving is synchronous, one job array per rung "
                        "(asynchronous: false)");
  } catch (const ConfigError& e) {
    return reportError(e.what());
  }
  if (slurm.advance && !halvingSpec)
    return reportError("--halving-advance is for the jobs of a sweep with sweep.halving");

  // The resume rules of the local runner, applied at submission time.
  std::vector<std::size_t> pending;
  std::size_t completed = 0, keptFailed = 0, elsewhere = 0, leftAlone = 0;
  // A halving sweep: the current rung's trials, the record locked meanwhile.
  std::unique_ptr<HalvingRun> halving;
  HalvingRun::Step rung;
  if (halvingSpec) {
    try {
      fs::create_directories(fs::path(trials.front().resultPath).parent_path());
      halving = std::make_unique<HalvingRun>(trials, *halvingSpec, sweep.retryFailed);
      if (const std::string problem = halving->lock(); !problem.empty())
        return reportError(problem, 1);
      rung = halving->synchronousStep(/*record=*/!sweep.dryRun);
    } catch (const std::exception& e) {
      return reportError(e.what());
    }
    if (rung.finished) {
      std::cout << "fulcrum sweep: every rung of the halving is done; nothing to submit\n";
      halving->printSummary(std::cout, sweep.experiment, !sweep.dryRun);
      return 0;
    }
    for (const SweepJob& job : rung.jobs) {
      if (trialLockHeld(trials[job.trial].resultPath)) {
        ++elsewhere;
        std::cout << fmt::format("  #{} {}: running elsewhere ({}.lock is held)\n", job.trial,
                                 trials[job.trial].id, trials[job.trial].resultPath);
      } else {
        pending.push_back(job.trial);
      }
    }
    std::cout << fmt::format(
        "fulcrum sweep: successive halving of {}: rung {} (epoch {}), {} trial(s) to reach it, "
        "{} running elsewhere\n",
        sweep.experiment, rung.rung, halvingSpec->rungs[rung.rung], pending.size(), elsewhere);
    if (elsewhere > 0) {
      std::cout << "fulcrum sweep: the rung cannot be decided while they run elsewhere; submit "
                   "again when they have ended\n";
      return 1;
    }
    if (slurm.advance && !rung.opened) {
      // The array of this rung has ended; its unfinished trials crashed or
      // were killed, and would likely do so again.
      std::cout << fmt::format(
          "fulcrum sweep: rung {}: trials {} did not reach epoch {} (see their logs and `fulcrum "
          "status {}`); not resubmitted: submit again with `fulcrum sweep {} --launcher slurm`\n",
          rung.rung, indexRanges(pending), halvingSpec->rungs[rung.rung], sweep.experiment,
          sweep.experiment);
      return 1;
    }
  }
  for (const auto& trial : halving ? std::vector<TrialSpec>{} : trials) {
    const TrialIdentity identity{trial.id, trial.spec.seed};
    const TrialFileState file = readTrialState(trial.resultPath, &identity);
    if (file.status == "completed") {
      ++completed;
    } else if (file.status == "unreadable" || file.status == "foreign") {
      // Only a file shown damaged is redone.
      ++leftAlone;
      std::cout << fmt::format("  #{} {} {} seed {}: {}, left alone (not submitted): {}\n",
                               trial.index, trial.id, trial.spec.strategyName, trial.spec.seed,
                               file.status, file.error);
    } else if (file.status == "failed" && !sweep.retryFailed) {
      ++keptFailed;
      std::cout << fmt::format("  #{} {} {} seed {}: failed, kept (--retry-failed resubmits): {}\n",
                               trial.index, trial.id, trial.spec.strategyName, trial.spec.seed,
                               file.error);
    } else if (trialLockHeld(trial.resultPath)) {
      ++elsewhere;
      std::cout << fmt::format("  #{} {} {} seed {}: running elsewhere ({}.lock is held)\n",
                               trial.index, trial.id, trial.spec.strategyName, trial.spec.seed,
                               trial.resultPath);
    } else {
      pending.push_back(trial.index);
    }
  }
  if (!halving)
    std::cout << fmt::format(
        "fulcrum sweep: {} trials of {}: {} completed, {} failed (kept), {} running elsewhere, {} "
        "unreadable or foreign (left alone), {} to submit\n",
        trials.size(), sweep.experiment, completed, keptFailed, elsewhere, leftAlone,
        pending.size());
  if (pending.empty()) {
    std::cout << "fulcrum sweep: nothing to submit\n";
    return keptFailed + elsewhere + leftAlone == 0 ? 0 : 1;
  }

  std::string executable, experiment, workdir;
  fs::path folder;
  try {
    executable = fulcrumExecutable();
    experiment = fs::absolute(sweep.experiment).lexically_normal().string();
    workdir = fs::current_path().string();
    folder = fs::absolute(fs::path(trials.front().resultPath).parent_path()).lexically_normal() /
             "slurm";
  } catch (const std::exception& e) {
    return reportError(e.what());
  }

  std::string name = trials.front().spec.name;
  std::string header = fmt::format(
      "#!/bin/bash\n"
      "# Written by `fulcrum sweep --launcher slurm` on {}: {} of the {} trials of\n"
      "# {}; array task I runs trial I (its output goes to <result file>.log once\n"
      "# it holds the trial's lock). Follow with `fulcrum status {}`.\n"
      "#SBATCH --job-name=fulcrum-{}\n"
      "#SBATCH --ntasks=1\n"
      "#SBATCH --cpus-per-task={}\n"
      "#SBATCH --chdir={}\n",
      utcStamp(), pending.size(), trials.size(), experiment, folder.parent_path().string(), name,
      slurm.cpusPerTask, workdir);
  if (!slurm.partition.empty()) header += fmt::format("#SBATCH --partition={}\n", slurm.partition);
  if (!slurm.time.empty()) header += fmt::format("#SBATCH --time={}\n", slurm.time);

  std::string trialArgs;
  for (const auto& set : sweep.sets) trialArgs += " --set " + shellQuote(set);
  for (const auto& axis : sweep.sweeps) trialArgs += " --sweep " + shellQuote(axis);
  std::string script = header;
  script += fmt::format(
      "#SBATCH --array={}{}\n", indexRanges(pending),
      slurm.arrayParallelism > 0 ? fmt::format("%{}", slurm.arrayParallelism) : std::string());
  script += fmt::format("#SBATCH --output={}/%A_%a.out\n", folder.string());
  const int64_t pauseAfter = halving ? rung.jobs.front().pauseAfter : 0;
  script +=
      fmt::format("exec {} run-trial {} --index \"$SLURM_ARRAY_TASK_ID\" --threads {} --log{}{}\n",
                  shellQuote(executable), shellQuote(experiment), slurm.cpusPerTask,
                  pauseAfter > 0 ? fmt::format(" --pause-after {}", pauseAfter) : "", trialArgs);
  // A halving rung: the job that decides it and submits the next (after the
  // last, prints the halving's summary).
  std::string advance;
  if (halving) {
    advance = header;
    advance += "# Once the rung's array has ended: record its promotions, submit the next rung.\n";
    advance += fmt::format("exec {} sweep {} --launcher slurm --halving-advance --cpus-per-task {}",
                           shellQuote(executable), shellQuote(experiment), slurm.cpusPerTask);
    if (!slurm.partition.empty()) advance += " --partition " + slurm.partition;
    if (!slurm.time.empty()) advance += " --time " + slurm.time;
    if (slurm.arrayParallelism > 0)
      advance += fmt::format(" --array-parallelism {}", slurm.arrayParallelism);
    if (slurm.gather) advance += " --gather";
    advance += trialArgs + "\n";
    const std::size_t at = advance.find("#SBATCH --job-name=");
    advance.replace(at, advance.find('\n', at) - at,
                    "#SBATCH --job-name=fulcrum-" + trials.front().spec.name + "-halving");
  }

  if (sweep.dryRun) {
    std::cout << "fulcrum sweep: --dry-run: would submit this script with sbatch --parsable\n"
              << script;
    if (!advance.empty())
      std::cout << "fulcrum sweep: and, after it (afterany), this one:\n" << advance;
    return 0;
  }
  const std::string sbatch = findOnPath("sbatch");
  if (sbatch.empty())
    return reportError(
        "sbatch is not on PATH: is Slurm installed? (tools/start-slurm installs and starts a "
        "one-node cluster on this machine)");

  try {
    fs::create_directories(folder);
    const std::string stamp = utcStamp();
    const fs::path scriptPath = freshPath(folder, "sweep-" + stamp);
    writeScript(scriptPath, script);
    std::string jobId;
    try {
      jobId = submit(sbatch, scriptPath.string());
    } catch (const std::runtime_error&) {
      fs::remove(scriptPath);  // never submitted: no script left to suggest otherwise
      throw;
    }
    std::cout << fmt::format(
        "fulcrum sweep: submitted job array {}: trials {} ({}), {} CPU(s) each{}\n"
        "  script {}\n  Slurm logs {}/{}_<index>.out; each trial's output in <result file>.log\n"
        "  follow with: fulcrum status {}\n",
        jobId, indexRanges(pending), pending.size(), slurm.cpusPerTask,
        slurm.arrayParallelism > 0 ? fmt::format(", at most {} at a time", slurm.arrayParallelism)
                                   : std::string(),
        scriptPath.string(), folder.string(), jobId, folder.parent_path().string());
    if (!advance.empty()) {
      std::string withOutput = advance;
      withOutput.insert(
          withOutput.find("# Once"),
          fmt::format("#SBATCH --output={}/halving-{}.out\n", folder.string(), jobId));
      const fs::path advancePath = freshPath(folder, "halving-" + stamp);
      writeScript(advancePath, withOutput);
      const std::string advanceId =
          submit(sbatch, advancePath.string(), {"--dependency=afterany:" + jobId});
      std::cout << fmt::format(
          "fulcrum sweep: submitted halving job {} (afterany:{}): {}; its output in "
          "{}/halving-{}.out\n",
          advanceId, jobId,
          pauseAfter > 0 ? fmt::format("decides rung {} and submits the next", rung.rung)
                         : "reports the halving's pick",
          folder.string(), jobId);
    }
    if (slurm.gather && pauseAfter == 0) {
      std::string gather = header;
      gather += fmt::format("#SBATCH --output={}/summary-{}.txt\n", folder.string(), jobId);
      gather += "# The comparison, once every task of array " + jobId + " has ended.\n";
      gather += "exec " + shellQuote(executable) + " summary";
      for (const auto& trial : trials)
        gather += " " + shellQuote(fs::absolute(trial.resultPath).lexically_normal().string());
      gather += "\n";
      // The job name says gather, not the sweep's name, in squeue.
      const std::string gatherName = "fulcrum-" + name + "-gather";
      const std::size_t at = gather.find("#SBATCH --job-name=");
      gather.replace(at, gather.find('\n', at) - at, "#SBATCH --job-name=" + gatherName);
      const fs::path gatherPath = freshPath(folder, "gather-" + stamp);
      writeScript(gatherPath, gather);
      const std::string gatherId =
          submit(sbatch, gatherPath.string(), {"--dependency=afterany:" + jobId});
      std::cout << fmt::format(
          "fulcrum sweep: submitted gather job {} (afterany:{}): summary in {}/summary-{}.txt\n",
          gatherId, jobId, folder.string(), jobId);
    }
    std::cout << jobId << std::endl;
  } catch (const std::exception& e) {
    return reportError(e.what());
  }
  return 0;
}

int statusCommand(const StatusOptions& options) {
  struct Row {
    std::string label;  // "#I id strategy seed" or the file name
    std::string path;
    TrialState state;
  };
  std::vector<Row> rows;
  std::error_code code;
  const bool isFolder = fs::is_directory(options.target, code);
  try {
    if (isFolder) {
      if (!options.sets.empty() || !options.sweeps.empty())
        return reportError("--set and --sweep apply to an experiment file, not to a folder");
      std::map<std::string, std::string> files;  // sorted by name
      // Entries are only named here, never followed: a symbolic link loop or
      // a dangling link is one row reported unreadable, not the end of the listing.
      std::error_code listError;
      for (fs::directory_iterator it(options.target, listError), end; !listError && it != end;
           it.increment(listError)) {
        const fs::path entry = it->path();
        const std::string fileName = entry.filename().string();
        if (entry.extension() == ".h5") files[fileName] = entry.string();
        // A trial still loading its data holds its lock before its file exists.
        const std::string suffix = ".h5.lock";
        if (fileName.size() > suffix.size() &&
            fileName.compare(fileName.size() - suffix.size(), suffix.size(), suffix) == 0) {
          const std::string result = entry.string();
          const std::string resultPath = result.substr(0, result.size() - 5);
          std::error_code statError;
          if (!fs::exists(fs::symlink_status(resultPath, statError)) && trialLockHeld(resultPath))
            files[fileName.substr(0, fileName.size() - 5)] = resultPath;
        }
      }
      if (listError)
        return reportError(
            fmt::format("cannot list the folder '{}': {}", options.target, listError.message()));
      for (const auto& [fileName, path] : files)
        rows.push_back({fileName, path, trialState(path, identityFromName(path))});
    } else if (fs::is_regular_file(options.target, code)) {
      std::vector<TrialSpec> trials;
      try {
        trials = planAndValidateSweep(options.target, options.sets, options.sweeps);
      } catch (const ConfigError& e) {
        return reportError(e.what());
      }
      for (const auto& trial : trials) {
        rows.push_back({fmt::format("{:>4}  {:<12}  {:<12}  {:>4}", trial.index, trial.id,
                                    trial.spec.strategyName, trial.spec.seed),
                        trial.resultPath,
                        trialState(trial.resultPath, TrialIdentity{trial.id, trial.spec.seed})});
      }
    } else {
      return reportError(fmt::format(
          "'{}' is neither a folder of trial files nor an experiment file", options.target));
    }
  } catch (const std::exception& e) {
    return reportError(e.what());
  }

  if (isFolder) {
    std::cout << fmt::format("{:<12}  {:<40}  {}\n", "state", "file", "detail");
  } else {
    std::cout << fmt::format("{:>4}  {:<12}  {:<12}  {:>4}  {:<12}  {}\n", "#", "id", "strategy",
                             "seed", "state", "detail / file");
  }
  std::map<std::string, std::size_t> counts;
  for (const auto& row : rows) {
    ++counts[row.state.state];
    if (isFolder) {
      std::cout << fmt::format("{:<12}  {:<40}  {}\n", row.state.state, row.label,
                               row.state.detail);
    } else {
      std::cout << fmt::format("{}  {:<12}  {}\n", row.label, row.state.state,
                               row.state.detail.empty() ? row.path : row.state.detail);
    }
  }
  std::string summary = fmt::format("{} trials:", rows.size());
  for (std::size_t i = 0; i < kStates.size(); ++i)
    summary += fmt::format("{} {} {}", i == 0 ? "" : ",", counts[kStates[i]], kStates[i]);
  std::cout << summary << "\n";
  return !rows.empty() && counts["completed"] == rows.size() ? 0 : 1;
}

}  // namespace fulcrum
