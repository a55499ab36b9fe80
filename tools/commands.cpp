#include "tools/commands.h"

#include <H5public.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "framework/checkpoint.h"
#include "framework/experiment.h"
#include "framework/extension_registry.h"
#include "framework/regular_file.h"
#include "framework/sweep.h"
#include "framework/trainer.h"
#include "framework/warning_capture.h"
#include "fulcrum_version.h"
#include "models/registry.h"
#include "results/file_screen.h"
#include "results/sweep_folder.h"
#include "results/trial_file.h"
#include "strategies/registry.h"
#include "tools/hdf5_run_log.h"
#include "tools/interrupt.h"
#include "tools/sweep.h"
#include "tools/trial_lock.h"

namespace fulcrum {

namespace fs = std::filesystem;

namespace {

std::string utcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

std::string hostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "unknown";
  return name;
}

std::string blasLibrary() {
  using GetConfig = char* (*)();
  if (auto config = reinterpret_cast<GetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    return config();
  }
  Dl_info info{};
  if (void* gemm = dlsym(RTLD_DEFAULT, "sgemm_"); gemm && dladdr(gemm, &info) && info.dli_fname) {
    return fs::weakly_canonical(info.dli_fname).string();
  }
  return "unknown";
}

}  // namespace

std::string checkpointPathOf(const std::string& resultPath) { return resultPath + ".ckpt"; }

std::string modelPathOf(const std::string& resultPath) {
  const fs::path path(resultPath);
  return (path.parent_path() / path.stem()).string();
}

TrialIdentity identityOf(const ExperimentSpec& spec) { return {trialId(spec.root), spec.seed}; }

TrialFileState readTrialState(const std::string& path, const TrialIdentity* expected) {
  const results::TrialReading reading = results::readTrialFile(path);
  switch (reading.verdict) {
    case results::TrialVerdict::kMissing:
      return {"missing", ""};
    case results::TrialVerdict::kDamaged:
      return {"damaged", reading.problem};
    case results::TrialVerdict::kUnreadable:
      return {"unreadable", reading.problem};
    case results::TrialVerdict::kReadable:
      break;
  }
  const results::TrialReader& reader = *reading.reader;
  if (expected != nullptr) {
    // The name says which trial a file should hold; only its configuration
    // says which it does (a `run --out` may have put another one there).
    std::string id = "none";
    try {
      const std::string yaml = reader.text("config_yaml");
      if (!yaml.empty()) id = trialId(YAML::Load(yaml));
    } catch (const YAML::Exception& e) {
      id = fmt::format("unknown (config_yaml does not parse: {})", e.msg);
    }
    const int64_t seed = reader.integer("seed", -1);
    if (id != expected->id || seed != static_cast<int64_t>(expected->seed)) {
      return {"foreign",
              fmt::format(
                  "{}: holds another trial (configuration id {}, seed {}) than the expected one "
                  "(id {}, seed {}); left alone",
                  path, id, seed, expected->id, expected->seed)};
    }
  }
  TrialFileState state{reader.text("status", "unreadable"), reader.text("error")};
  if (state.status == "failed" && state.error.rfind("interrupted", 0) == 0)
    state.status = "interrupted";
  return state;
}

int reportError(const std::string& message, int code) {
  std::cerr << "fulcrum: " << message << "\n";
  return code;
}

void prepareOutputFolder(const fs::path& folder) {
  std::error_code code;
  fs::create_directories(folder, code);
  if (code)
    throw std::runtime_error(
        fmt::format("cannot create output folder '{}': {}", folder.string(), code.message()));
  // A real write, not access(): root passes access() on a read-only mount,
  // and a full disk shows only when data is written and synced.
  const fs::path probe = folder / fmt::format(".fulcrum-write-test-{}", getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error(fmt::format("output folder '{}' is not writable: {}", folder.string(),
                                         std::strerror(errno)));
  }
  const char byte = 'x';
  const bool written = ::write(fd, &byte, 1) == 1 && ::fsync(fd) == 0;
  const int error = errno;
  ::close(fd);
  fs::remove(probe, code);
  if (!written) {
    throw std::runtime_error(fmt::format("output folder '{}' is not writable: {}", folder.string(),
                                         std::strerror(error)));
  }
}

std::string noSpaceNote(const fs::path& folder) {
  std::error_code code;
  const fs::space_info space = fs::space(folder.empty() ? fs::path(".") : folder, code);
  // Less than one chunk of one curve (8 KB) cannot hold another write.
  if (code || space.available >= 64 * 1024) return "";
  return fmt::format("; no space left on the file system of '{}' ({} bytes free)", folder.string(),
                     space.available);
}

std::string versionText() {
  return fmt::format(
      "fulcrum {} (commit {})\nLibTorch {}\nHDF5 {}.{}.{}\nBLAS {}\nthreads available {}\n",
      FULCRUM_VERSION, FULCRUM_GIT_COMMIT, TORCH_VERSION, H5_VERS_MAJOR, H5_VERS_MINOR,
      H5_VERS_RELEASE, blasLibrary(), std::thread::hardware_concurrency());
}

namespace {

/// One line of progress on a terminal, rewritten in place and cleared before
/// anything else is printed; does nothing when `enabled` is false.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}
  void show(const std::string& text) {
    if (!enabled_) return;
    std::cout << "\r\033[K" << text << std::flush;
    shown_ = true;
  }
  /// "epoch 2/10: step 340/938, 112 steps/s, ETA 0:05", at most twice a
  /// second and only once an epoch has run for two seconds.
  void epoch(int64_t epoch, int64_t epochs, int64_t done, int64_t total) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (done == 0) {
      epochStart_ = now;
      lastShown_ = now;
      return;
    }
    const double elapsed = std::chrono::duration<double>(now - epochStart_).count();
    if (elapsed < 2.0 || std::chrono::duration<double>(now - lastShown_).count() < 0.5) return;
    lastShown_ = now;
    const double rate = static_cast<double>(done) / elapsed;
    const auto left = static_cast<int64_t>(static_cast<double>(total - done) / rate);
    show(fmt::format("epoch {}/{}: step {}/{}, {:.3g} steps/s, ETA {}:{:02}", epoch + 1, epochs,
                     done, total, rate, left / 60, left % 60));
  }
  void clear() {
    if (!shown_) return;
    std::cout << "\r\033[K" << std::flush;
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point epochStart_, lastShown_;
};

}  // namespace

std::unique_ptr<Strategy> validateTrial(const ExperimentSpec& spec) {
  try {
    std::unique_ptr<Strategy> strategy = makeStrategy(spec.strategy, spec.tasks);
    checkStrategyFits(spec, *strategy, planModel(spec));
    return strategy;
  } catch (const ConfigError& e) {
    throw locateInOverrides(spec, e);
  }
}

int runCommand(const RunOptions& options) {
  // From here on a LibTorch warning is an error of the trial (`run` and
  // `run-trial` alike), not a line on stderr: the trainer fails on it.
  WarningCapture warnings;
  ExperimentSpec spec;
  std::unique_ptr<Strategy> strategy;
  try {
    spec = loadExperiment(options.experiment, options.overrides);
  } catch (const ConfigError& e) {
    return reportError(e.what());
  }
  try {
    strategy = validateTrial(spec);
  } catch (const ConfigError& e) {
    return reportError(e.what());
  }
  // <out>.ckpt.part-<pid> and the like must fit the file system's limit.
  if (!options.out.empty() &&
      fs::path(options.out).filename().string().size() + kFileSuffixReserve > kFileNameMax) {
    return reportError(
        fmt::format("--out {}: the file name is too long: fulcrum appends up to {} "
                    "bytes to it (.ckpt.part-<pid>, .lock) and a file name has at "
                    "most {}",
                    options.out, kFileSuffixReserve, kFileNameMax));
  }
  const fs::path path = options.out.empty()
                            ? fs::path(spec.output) / fmt::format("{}-{}-seed{}.h5", spec.name,
                                                                  spec.strategyName, spec.seed)
                            : fs::path(options.out);
  const std::string checkpoint = checkpointPathOf(path.string());
  // Only a regular file is ever replaced: a FIFO, a device node (as root,
  // /dev/null too), a folder or a symbolic link where the result or its
  // checkpoint goes is refused before anything is written or read.
  for (const std::string& target : {path.string(), checkpoint}) {
    if (const std::string kind = nonRegularKind(target, /*followLinks=*/false); !kind.empty()) {
      const std::string message =
          fmt::format("'{}' is {}; fulcrum replaces only regular files", target, kind);
      if (!options.out.empty())
        return reportError(fmt::format("--out {}: {}", options.out, message));
      return reportError(errorAtKey(spec, "output", message).what());
    }
  }
  try {
    prepareOutputFolder(path.parent_path().empty() ? fs::path(".") : path.parent_path());
  } catch (const std::exception& e) {
    // Located where the folder was chosen: --out, or the `output:` key.
    if (!options.out.empty())
      return reportError(fmt::format("--out {}: {}", options.out, e.what()));
    return reportError(errorAtKey(spec, "output", e.what()).what());
  }
  // The data before the lock: bad input leaves nothing behind, not even a lock file.
  MultiTaskData data;
  // On a terminal, one line while the data is built (multi_fashion composes
  // its images) and inside long epochs, cleared before any other output.
  const auto progress =
      std::make_shared<ProgressLine>(!options.quiet && ::isatty(STDOUT_FILENO) == 1);
  progress->show(fmt::format("fulcrum run: building the data (data.kind {})…", spec.data.kind));
  try {
    try {
      data = loadData(spec);
    } catch (...) {
      progress->clear();
      throw;
    }
    progress->clear();
  } catch (const DataError& e) {
    return reportError(
        errorAtKey(spec, spec.data.kind == "multi_fashion" ? "data.directory" : "data", e.what())
            .what());
  } catch (const c10::Error& e) {
    return reportError(errorAtKey(spec, "data", e.what_without_backtrace()).what());
  } catch (const std::bad_alloc&) {
    return reportError(errorAtKey(spec, "data", "not enough memory for the dataset").what());
  } catch (const ConfigError& e) {  // a data file's content, located at the key naming it
    return reportError(e.what());
  }
  // Once the data's shape is known (a registered dataset's is known only now).
  std::shared_ptr<MultiTaskModel> model;
  try {
    model = makeModel(spec, data.inputShape);
  } catch (const ConfigError& e) {
    return reportError(locateInOverrides(spec, e).what());
  }

  // Every writer of a trial file holds its lock for the whole trial; a
  // sweep's run-trial took it already.
  std::optional<TrialLock> lock;
  if (!options.lockHeld) {
    lock.emplace(path.string());
    if (!lock->held() && lock->error() != 0)
      return reportError(fmt::format("cannot create the lock file '{}.lock': {}", path.string(),
                                     std::strerror(lock->error())));
    if (!lock->held())
      return reportError(
          fmt::format(
              "{} is running elsewhere: another process (a sweep, or another run) holds {}.lock; "
              "nothing was touched",
              path.string(), path.string()),
          kExitRunningElsewhere);
  }
  bool resume = false;
  if (options.resume) {
    const TrialIdentity identity = identityOf(spec);
    const TrialFileState state = readTrialState(path.string());
    const std::string& status = state.status;
    if (status == "unreadable")
      return reportError(
          fmt::format("--resume: {}; it is not shown damaged, so it is neither resumed nor "
                      "replaced: fix it or move it away",
                      state.error));
    if (status == "completed") {
      // Completed means done only if it is this trial; a checkpoint of
      // another configuration is refused when it is loaded.
      const TrialFileState mine = readTrialState(path.string(), &identity);
      if (mine.status == "foreign") return reportError(fmt::format("--resume: {}", mine.error));
      std::cout << fmt::format("fulcrum run: {} is already completed; nothing to resume",
                               path.string())
                << std::endl;
      return 0;
    }
    resume = status != "missing" && status != "damaged" && fs::exists(checkpoint);
    if (!resume) {
      std::cout << fmt::format("fulcrum run: {}; starting from step 0",
                               status == "missing" ? "no result file to continue"
                               : status == "damaged"
                                   ? "the result file is damaged (" + state.error + ")"
                                   : "no checkpoint " + checkpoint)
                << std::endl;
    }
  } else if (fs::exists(path) && !options.overwrite) {
    return reportError(fmt::format(
        "result file '{}' exists; pass --overwrite to replace it, or --resume to continue it",
        path.string()));
  }

  TrialDescription description;
  description.text = {{"fulcrum_version", FULCRUM_VERSION},
                      {"git_commit", FULCRUM_GIT_COMMIT},
                      {"config_yaml", spec.resolvedYaml()},
                      {"experiment_file", spec.file},
                      {"name", spec.name},
                      {"strategy", spec.strategyName},
                      {"run_name", options.runName.empty() ? spec.strategyName : options.runName},
                      {"host", hostName()},
                      {"start_time", utcNow()},
                      {"torch_version", TORCH_VERSION},
                      {"blas", blasLibrary()}};
  description.integers = {{"seed", static_cast<int64_t>(spec.seed)}};

  Hdf5RunLog log(path.string(), options.overwrite || options.resume);
  TrainHooks hooks;
  hooks.checkpointPath = checkpoint;
  hooks.modelPath = modelPathOf(path.string());
  hooks.resume = resume;
  hooks.pauseAfterEpoch = options.pauseAfter;
  hooks.pendingWarning = [&warnings] { return warnings.takeSummary(); };
  // Ctrl-C or SIGTERM ends the trial between steps, its file marked failed ("interrupted at step
  // N").
  installStopHandlers();
  // A closed stdout (`fulcrum run ... | head -1`) interrupts the trial like
  // SIGTERM (resumable) instead of killing it with SIGPIPE mid-write.
  std::signal(SIGPIPE, SIG_IGN);
  hooks.stopRequested = [] { return stopSignal() != 0 || !std::cout; };
  if (!options.quiet) {
    hooks.progress = [progress](const std::string& line) {
      progress->clear();
      std::cout << line << std::endl;
    };
    hooks.stepStarting = [progress, epochs = spec.train.epochs](int64_t epoch, int64_t done,
                                                                int64_t total) {
      progress->epoch(epoch, epochs, done, total);
    };
  }
  hooks.warning = [](const std::string& line) {
    std::cerr << "fulcrum: warning: " << line << std::endl;
  };
  hooks.notice = [](const std::string& line) { std::cout << "fulcrum run: " << line << std::endl; };
  if (!options.quiet) {
    std::cout << fmt::format("fulcrum run: {} strategy={} seed={} tasks={} train={} → {}",
                             spec.name, spec.strategyName, spec.seed, spec.tasks.size(),
                             data.train.size(), path.string())
              << std::endl;
  }
  TrialResult result;
  try {
    try {
      result = train(spec, data, *model, *strategy, log, description, hooks);
    } catch (...) {
      progress->clear();  // before any message, which would share the line
      throw;
    }
    progress->clear();
  } catch (const results::FileError& e) {
    // A fault of the machine while the trial ran (a full disk, a lost
    // mount): a failed trial (exit 1), not bad input. The file is marked
    // failed if there is still room to record it; otherwise it stays
    // "running" and a resumed sweep redoes it.
    const std::string reason = e.what() + noSpaceNote(path.parent_path());
    try {
      log.end("failed", reason);
    } catch (const std::exception&) {
      return reportError(fmt::format("trial failed: {} (the file still says 'running': no room "
                                     "to record the failure)",
                                     reason),
                         1);
    }
    return reportError(fmt::format("trial failed: {}", reason), 1);
  } catch (const CheckpointError& e) {
    return reportError(e.what() + noSpaceNote(path.parent_path()), resume ? 2 : 1);
  } catch (const c10::Error& e) {
    return reportError(fmt::format("trial failed: {}", e.what_without_backtrace()), 1);
  } catch (const std::exception& e) {
    return reportError(fmt::format("trial failed: {}", e.what()), 1);
  }
  if (result.skippedSteps > 0) {
    std::cerr << fmt::format(
        "fulcrum: warning: {} optimizer step(s) skipped for non-finite values "
        "(train.on_nan: skip_step)\n",
        result.skippedSteps);
  }
  if (result.status == "paused") {
    std::cout << fmt::format("fulcrum run: {}; --resume continues it", result.error) << std::endl;
    std::cout << path.string() << std::endl;
    return 0;
  }
  if (result.status != "completed") {
    std::cerr << "fulcrum: trial failed: " << result.error << "\n";
    std::cout << path.string() << std::endl;
    return 1;
  }
  std::cout << path.string() << std::endl;
  return 0;
}

int listCommand() {
  std::cout << fmt::format("{:<14} {:<18} {}\n", "strategy", "needs", "description");
  for (const auto& row : strategyTable()) {
    std::cout << fmt::format("{:<14} {:<18} {} [{}]\n", row.name, toString(row.needs),
                             row.description, row.reference);
  }
  std::cout << fmt::format("\n{:<14} {}\n", "architecture", "description");
  for (const auto& row : architectureTable()) {
    std::cout << fmt::format("{:<14} {}{}\n", row.name, row.description,
                             row.reference.empty() ? "" : " [" + row.reference + "]");
  }
  std::vector<std::string> data = {"multi_fashion", "gradnorm_toy"}, trunks, heads;
  for (const auto& row : datasetTable()) data.push_back(row.name);
  for (const auto& row : trunkTable()) trunks.push_back(row.name);
  for (const auto& row : headTable()) heads.push_back(row.name);
  std::cout << fmt::format("\ndata kinds: {}\ntrunk kinds: {}\nhead kinds: {}\n",
                           fmt::join(data, ", "), fmt::join(trunks, ", "), fmt::join(heads, ", "));
  return 0;
}

int listStrategyCommand(const std::string& name) {
  YAML::Node yaml(YAML::NodeType::Map);
  yaml["name"] = name;
  ConfigNode node(yaml, "fulcrum list", "strategy");
  node.recordOptions();
  // Defaults that depend on the task count (fixed weights, say) are shown for two tasks.
  const std::vector<TaskSpec> tasks = {{"task0", TaskKind::kRegression, 1},
                                       {"task1", TaskKind::kRegression, 1}};
  try {
    makeStrategy(node, tasks);
  } catch (const ConfigError& e) {
    return reportError(fmt::format("list {}: {}", name, e.message()));
  }
  for (const auto& row : strategyTable()) {
    if (row.name != name) continue;
    std::cout << fmt::format("{}: {}\n  {}\n  needs: {}\n", row.name, row.description,
                             row.reference, toString(row.needs));
  }
  const std::vector<OptionRecord> options = node.recordedOptions();
  std::vector<OptionRecord> shown;
  for (const auto& option : options) {
    if (option.key != "name") shown.push_back(option);
  }
  if (shown.empty()) {
    std::cout << "\noptions: none\n";
    return 0;
  }
  std::size_t keyWidth = 6, typeWidth = 4, defaultWidth = 7;
  for (const auto& option : shown) {
    keyWidth = std::max(keyWidth, option.key.size());
    typeWidth = std::max(typeWidth, option.type.size());
    defaultWidth = std::max(defaultWidth, option.fallback.size());
  }
  std::cout
      << "\noptions (strategy.OPTION; defaults for 2 tasks where they depend on the tasks):\n";
  std::cout << fmt::format("  {:<{}}  {:<{}}  {:<{}}  {}\n", "option", keyWidth, "type", typeWidth,
                           "default", defaultWidth, "allowed");
  for (const auto& option : shown) {
    std::cout << fmt::format("  {:<{}}  {:<{}}  {:<{}}  {}\n", option.key, keyWidth, option.type,
                             typeWidth, option.fallback, defaultWidth, option.constraint);
  }
  return 0;
}

namespace {

/// The keys in which `file` differs from the other trial files of its folder,
/// with its values ("train.optimizer.lr=0.001"); "none" for a file alone.
std::string sweptValuesOf(const std::string& file) {
  try {
    const fs::path parent = fs::path(file).parent_path();
    const results::TrialSet set = results::scanFolder(parent.empty() ? "." : parent.string());
    for (const results::TrialEntry& trial : set.trials) {
      std::error_code code;
      if (!fs::equivalent(trial.path, file, code)) continue;
      std::string text;
      for (const std::string& key : set.sweptKeys) {
        const auto found = trial.config.find(key);
        text += fmt::format("{}{}={}", text.empty() ? "" : " ", key,
                            found == trial.config.end() ? "-" : found->second);
      }
      return text.empty() ? "none (no other configuration in its folder)" : text;
    }
  } catch (const results::FileError&) {
  }
  return "unknown (the folder cannot be read)";
}

}  // namespace

int showCommand(const std::vector<std::string>& files) {
  int code = 0;
  for (const auto& file : files) {
    try {
      const std::string unsafe = results::screenTrialFile(file);
      if (!unsafe.empty()) throw results::FileError(fmt::format("{}: {}", file, unsafe));
      results::TrialReader reader(file);
      std::cout << file << "\n";
      for (const char* key : {"name", "run_name", "strategy", "status", "error", "start_time",
                              "end_time", "host", "fulcrum_version", "git_commit", "tasks"}) {
        const std::string value = reader.text(key);
        if (!value.empty()) std::cout << fmt::format("  {:<16} {}\n", key, value);
      }
      std::cout << fmt::format("  {:<16} {}\n", "seed", reader.integer("seed"));
      std::cout << fmt::format("  {:<16} {}\n", "swept values", sweptValuesOf(file));
      if (reader.attributes().integers.count("skipped_steps") != 0) {
        std::cout << fmt::format("  {:<16} {}\n", "skipped_steps", reader.integer("skipped_steps"));
      }
      const std::vector<double> epochs = reader.curve("epochs/epoch");
      const std::vector<double> steps = reader.curve("steps/step");
      std::cout << fmt::format("  {:<16} {} epochs, {} steps logged\n", "progress", epochs.size(),
                               steps.size());
      std::cout << "  final metrics (last epoch logged):\n";
      for (const auto& curve : reader.curves()) {
        if (curve.rfind("epochs/", 0) != 0 || curve == "epochs/epoch" || curve == "epochs/seconds")
          continue;
        const std::vector<double> values = reader.curve(curve);
        if (values.empty()) continue;
        std::cout << fmt::format("    {:<44} {:.6g}\n", curve.substr(7), values.back());
      }
      std::cout << "  final weights:\n";
      for (const auto& curve : reader.curves()) {
        if (curve.rfind("steps/weight/", 0) != 0) continue;
        const std::vector<double> values = reader.curve(curve);
        if (!values.empty())
          std::cout << fmt::format("    {:<44} {:.6g}\n", curve.substr(13), values.back());
      }
      const std::string yaml = reader.text("config_yaml");
      if (!yaml.empty()) {
        std::cout << "  resolved configuration:\n";
        std::istringstream lines(yaml);
        for (std::string line; std::getline(lines, line);) std::cout << "    " << line << "\n";
      }
    } catch (const results::FileError& e) {
      std::cerr << "fulcrum: " << e.what() << "\n";
      code = 2;
    }
  }
  return code;
}

}  // namespace fulcrum
