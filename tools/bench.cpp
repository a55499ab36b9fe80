// fulcrum-bench: time one training step of every strategy on the two
// reference workloads, relative to equal weighting measured in the same run,
// and beside a plain-PyTorch reference loop (tools/bench_reference.py).
//
//   W1  the GradNorm toy: mlp trunk 250→100×4, T = 10 linear heads 100→100,
//       batch 100, MSE, Adam
//   W2  Multi-Fashion: LeNet trunk, T = 2, batch 256, cross-entropy, Adam
//
// Every measurement runs in its own child process (its peak resident memory
// is its own, and no OpenMP pool is shared across a fork). Equal weighting is
// measured again after every case and a case's ratio uses the equal-weights
// runs just before and after it, so that slow drifts of the machine's load
// cancel out of the ratios. Nothing here asserts a time: it measures.
#include <fmt/format.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "framework/config_node.h"
#include "framework/experiment.h"
#include "framework/trainer.h"
#include "fulcrum_version.h"
#include "models/registry.h"
#include "strategies/registry.h"

extern char** environ;

namespace {

using namespace fulcrum;

/// A reference workload: its experiment (the strategy is set per case) and
/// default measurement lengths (W2's step is ~20× W1's).
struct Workload {
  std::string name;
  std::string yaml;
  int64_t batch;
  int64_t warmup;
  int64_t steps;
};

const std::vector<Workload>& workloads() {
  static const std::vector<Workload> table{
      {"w1", R"(
name: bench_w1
data: {kind: gradnorm_toy, tasks: 10, val_size: 10, test_size: 10}
model: {trunk: {kind: mlp, hidden: [100, 100, 100, 100]}, head: {kind: linear}}
train: {log_gradients_every: 0, epochs: 1, batch_size: 100, optimizer: {kind: adam, lr: 0.001}}
strategy: {name: fixed}
)",
       100, 20, 200},
      {"w2", R"(
name: bench_w2
data: {kind: multi_fashion, val_size: 10, test_size: 10}
model: {trunk: {kind: lenet}, head: {kind: linear}}
train: {log_gradients_every: 0, epochs: 1, batch_size: 256, optimizer: {kind: adam, lr: 0.001}}
strategy: {name: fixed}
)",
       256, 5, 50},
  };
  return table;
}

/// Options tried on every registered strategy; a strategy that accepts one
/// is measured with it as an extra case (e.g. the representation-gradient
/// "-UB" variants, FAMO without its second forward pass).
const std::vector<std::string> kVariantOptions = {"gradients: representation",
                                                  "loss_after: next_step", "layer: all"};

/// One thing to measure: a strategy with options (C++) or a reference method (Python).
struct Case {
  std::string label;     ///< e.g. "mgda" or "mgda{gradients: representation}"
  std::string name;      ///< the registered strategy's name; empty for Python
  std::string strategy;  ///< YAML flow mapping for `strategy=`; empty for Python
  std::string method;    ///< the Python reference's method; empty for C++
  std::string needs;     ///< what it computes per step
};

/// Per-step samples of one or more runs of a case.
struct Samples {
  std::vector<double> wall, cpu, forward, strategy, backward, optimizer;
  double peakMb = 0.0;
  std::string error;

  void append(const Samples& other) {
    auto add = [](std::vector<double>& to, const std::vector<double>& from) {
      to.insert(to.end(), from.begin(), from.end());
    };
    add(wall, other.wall);
    add(cpu, other.cpu);
    add(forward, other.forward);
    add(strategy, other.strategy);
    add(backward, other.backward);
    add(optimizer, other.optimizer);
    peakMb = std::max(peakMb, other.peakMb);
    if (error.empty()) error = other.error;
  }
};

double quantile(std::vector<double> values, double q) {
  values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return std::isnan(v); }),
               values.end());
  if (values.empty()) return std::nan("");
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const auto low = static_cast<std::size_t>(position);
  const std::size_t high = std::min(low + 1, values.size() - 1);
  return values[low] + (position - static_cast<double>(low)) * (values[high] - values[low]);
}

double median(const std::vector<double>& values) { return quantile(values, 0.5); }

double processCpuMs() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) * 1e-6;
}

/// Collects the trainer's own per-step timings, and the process CPU time
/// between consecutive steps of an epoch (nothing else runs between them;
/// the first step of an epoch follows the evaluation: NaN).
struct TimingLog : RunLog {
  std::vector<std::vector<double>> timings;
  std::vector<double> cpu;
  double lastCpu = 0.0;
  int64_t lastEpoch = 0;
  void begin(const TrialDescription&) override { lastCpu = processCpuMs(); }
  void step(const StepRecord& r) override {
    const double now = processCpuMs();
    cpu.push_back(r.epoch == lastEpoch ? now - lastCpu : std::nan(""));
    lastCpu = now;
    lastEpoch = r.epoch;
    timings.push_back(r.timings);
  }
  void epoch(const EpochRecord&) override {}
  void end(const std::string&, const std::string&) override {}
};

/// Batches per epoch: the data are generated for one epoch of this many
/// batches (generating the toy's targets costs more than training on them),
/// and a run trains as many epochs as its steps need.
constexpr int64_t kBatchesPerEpoch = 50;

int64_t epochsFor(int64_t steps) { return (steps + kBatchesPerEpoch - 1) / kBatchesPerEpoch; }

ExperimentSpec benchSpec(const Workload& workload, const std::string& strategy, int64_t totalSteps,
                         int64_t threads) {
  return parseExperiment(
      workload.yaml, "bench-" + workload.name + ".yaml",
      {"strategy=" + strategy, fmt::format("data.train_size={}", workload.batch * kBatchesPerEpoch),
       fmt::format("train.epochs={}", epochsFor(totalSteps)),
       fmt::format("train.threads={}", threads)});
}

/// The protocol between a measuring child and the harness: "ok PEAK_MB",
/// then one line "wall cpu forward strategy backward optimizer" (ms) per
/// measured step (cpu -1 when not measured); or "error MESSAGE".
/// tools/bench_reference.py writes the same.
void measureCpp(const Workload& workload, const std::string& strategy, int64_t warmup,
                int64_t steps, int64_t threads, FILE* out) {
  try {
    const ExperimentSpec spec = benchSpec(workload, strategy, warmup + steps, threads);
    auto instance = makeStrategy(spec.strategy, spec.tasks);
    const MultiTaskData data = loadData(spec);
    TimingLog log;
    const TrialResult result =
        train(spec, data, *makeModel(spec, data.inputShape), *instance, log, {});
    if (result.status != "completed") throw std::runtime_error(result.error);
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::fprintf(out, "ok %.1f\n", static_cast<double>(usage.ru_maxrss) / 1024.0);
    for (std::size_t k = static_cast<std::size_t>(warmup);
         k < static_cast<std::size_t>(warmup + steps); ++k) {
      // forward, strategy, backward, optimizer, gradient_log (0: not logged here), total
      const auto& t = log.timings[k];
      const double cpu = std::isnan(log.cpu[k]) ? -1.0 : log.cpu[k];  // -1: not measured
      std::fprintf(out, "%.6f %.6f %.6f %.6f %.6f %.6f\n", t.back(), cpu, t[0], t[1], t[2], t[3]);
    }
  } catch (const c10::Error& e) {
    std::fprintf(out, "error %s\n", e.what_without_backtrace());
  } catch (const std::exception& e) {
    std::fprintf(out, "error %s\n", e.what());
  }
}

/// Writes the training split of a workload as raw little-endian arrays for
/// the Python reference: meta.txt names each array with its dtype and shape.
void dumpData(const Workload& workload, const std::string& directory, FILE* out) {
  try {
    const ExperimentSpec spec = benchSpec(workload, "{name: fixed}", 1, 1);
    const MultiTaskData data = loadData(spec);
    std::ofstream meta(directory + "/meta.txt");
    auto write = [&](const std::string& name, const torch::Tensor& tensor) {
      const torch::Tensor t = tensor.contiguous();
      std::ofstream(directory + "/" + name + ".bin", std::ios::binary)
          .write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
      meta << name << ' ' << (t.scalar_type() == torch::kInt64 ? "int64" : "float32");
      for (int64_t d : t.sizes()) meta << ' ' << d;
      meta << '\n';
    };
    write("inputs", data.train.inputs);
    for (std::size_t t = 0; t < data.train.targets.size(); ++t) {
      write("target" + std::to_string(t), data.train.targets[t]);
    }
    std::fprintf(out, "ok\n");
  } catch (const std::exception& e) {
    std::fprintf(out, "error %s\n", e.what());
  }
}

Samples parseSamples(const std::string& text, int status) {
  Samples s;
  std::istringstream in(text);
  std::string first;
  in >> first;
  if (first != "ok") {
    std::getline(in, s.error);
    if (first != "error") s.error = first + s.error;
    if (s.error.empty()) s.error = fmt::format("child ended with status {} and no output", status);
    return s;
  }
  in >> s.peakMb;
  double v[6];
  while (in >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5]) {
    s.wall.push_back(v[0]);
    s.cpu.push_back(v[1] < 0.0 ? std::nan("") : v[1]);
    s.forward.push_back(v[2]);
    s.strategy.push_back(v[3]);
    s.backward.push_back(v[4]);
    s.optimizer.push_back(v[5]);
  }
  if (s.wall.empty()) s.error = "no samples";
  return s;
}

std::string readAll(int fd) {
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0)
    text.append(buffer, static_cast<std::size_t>(n));
  return text;
}

/// Runs `body` in a forked child writing to a pipe; returns what it wrote.
std::string childOutput(const std::function<void(FILE*)>& body) {
  int fds[2];
  if (pipe(fds) != 0) return "error pipe failed";
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    FILE* out = fdopen(fds[1], "w");
    body(out);
    std::fclose(out);
    _exit(0);
  }
  close(fds[1]);
  const std::string text = readAll(fds[0]);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (text.empty()) return fmt::format("error child ended with status {} and no output", status);
  return text;
}

Samples inChild(const std::function<void(FILE*)>& body) {
  return parseSamples(childOutput(body), 0);
}

/// Runs a program with `env` added to the environment; returns its standard output.
std::string programOutput(const std::vector<std::string>& argv,
                          const std::vector<std::string>& env) {
  int fds[2];
  if (pipe(fds) != 0) return "error pipe failed";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const bool overridden = std::any_of(env.begin(), env.end(), [&](const std::string& mine) {
      return entry.compare(0, mine.find('=') + 1, mine, 0, mine.find('=') + 1) == 0;
    });
    if (!overridden) envp.push_back(*e);
  }
  envp.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (spawned != 0) {
    close(fds[0]);
    return fmt::format("error cannot run {}: {}", argv[0], std::strerror(spawned));
  }
  const std::string text = readAll(fds[0]);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (text.empty())
    return fmt::format("error {} ended with status {} and no output", argv[0], status);
  return text;
}

Samples inProcess(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  return parseSamples(programOutput(argv, env), 0);
}

/// What the harness needs to run the Python reference.
struct PythonReference {
  std::string interpreter;  ///< empty: not measured
  std::string script;
  std::string dataDirectory;
};

Samples runCase(const Workload& workload, const Case& c, int64_t warmup, int64_t steps,
                int64_t threads, const PythonReference& python) {
  if (c.method.empty()) {
    return inChild(
        [&](FILE* out) { measureCpp(workload, c.strategy, warmup, steps, threads, out); });
  }
  const std::string t = std::to_string(threads);
  return inProcess({python.interpreter, python.script, "--workload", workload.name, "--data",
                    python.dataDirectory, "--method", c.method, "--warmup", std::to_string(warmup),
                    "--steps", std::to_string(steps), "--threads", t},
                   {"OMP_NUM_THREADS=" + t, "OPENBLAS_NUM_THREADS=" + t});
}

/// A method of tools/bench_reference.py.
struct PythonMethod {
  std::string method;    ///< its --method name
  std::string needs;     ///< what it computes per step
  std::string strategy;  ///< the registered strategy it implements; empty for a lower bound
};

/// Every Python reference method. A strategy whose reference needs a solver
/// Debian does not package (nash_mtl: cvxpy and ECOS; upgrad: quadprog) has none.
const std::vector<PythonMethod> kPythonMethods = {
    {"equal", "losses", "fixed"},
    {"gradnorm", "shared_parameters", "gradnorm"},
    {"grads_sum", "shared_parameters", ""},
    {"mgda", "shared_parameters", "mgda"},
    {"pcgrad", "shared_parameters", "pcgrad"},
    {"cagrad", "shared_parameters", "cagrad"},
    {"imtl", "shared_parameters", "imtl"},
    {"aligned_mtl", "shared_parameters", "aligned_mtl"},
    {"db_mtl", "shared_parameters", "db_mtl"},
    {"gradvac", "shared_parameters", "gradvac"},
    {"fairgrad", "shared_parameters", "fairgrad"},
    {"rep_grads_sum", "representation", ""},
    {"mgda_rep", "representation", "mgda"},
    {"pcgrad_rep", "representation", "pcgrad"},
    {"cagrad_rep", "representation", "cagrad"},
    {"imtl_rep", "representation", "imtl"},
    {"aligned_mtl_rep", "representation", "aligned_mtl"},
    {"gradvac_rep", "representation", "gradvac"},
    {"fairgrad_rep", "representation", "fairgrad"},
    {"graddrop", "representation", "graddrop"},
};

/// The Python reference method compared with a C++ case: the same method on
/// the same kind of gradients where the reference implements it (GradNorm's
/// reference differentiates every shared parameter, as LibMTL, whichever
/// layer the case uses); otherwise the cheapest reference step that computes
/// the same gradients, a lower bound of any Python implementation (so the
/// comparison flatters Python). `sameMethod` (if given) says which.
std::string pythonCounterpart(const std::string& strategy, const std::string& needs,
                              bool* sameMethod = nullptr) {
  if (sameMethod != nullptr) *sameMethod = true;
  if (needs == "losses") return "equal";
  const bool representation = needs == "representation";
  for (const auto& m : kPythonMethods) {
    if (m.strategy == strategy && (m.needs == "representation") == representation) return m.method;
  }
  if (sameMethod != nullptr) *sameMethod = false;
  return representation ? "rep_grads_sum" : "grads_sum";
}

/// Results of one case under one thread count.
struct Row {
  std::string workload;
  int64_t threads = 1;
  Case c;
  Samples samples;
  Samples equal;      ///< the equal-weights runs next to it (same implementation)
  int64_t steps = 0;  ///< measured steps per run
};

std::string cpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

std::string loadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

std::string utcNow() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  return text;
}

std::vector<int64_t> parseThreads(const std::vector<std::string>& values) {
  std::vector<int64_t> out;
  for (const auto& v : values) {
    const int64_t n =
        v == "all" ? static_cast<int64_t>(std::thread::hardware_concurrency()) : std::stoll(v);
    if (n < 1)
      throw CLI::ValidationError("--threads", "thread counts must be >= 1 or 'all', got " + v);
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "fulcrum-bench: per-step time of every strategy relative to equal weighting, "
      "beside a plain-PyTorch reference loop"};
  std::vector<std::string> workloadNames{"w1", "w2"};
  int64_t warmup = 0, steps = 0, rounds = 1;
  std::vector<std::string> threadValues{"1", "all"};
  std::string csvPath, markdownPath;
  std::vector<std::string> only;
  bool variants = true;
  std::string python = "/usr/bin/python3";
  std::string script = FULCRUM_SOURCE_DIR "/tools/bench_reference.py";
  app.add_option("--workloads", workloadNames, "w1, w2 or w1,w2")
      ->delimiter(',')
      ->check(CLI::IsMember({"w1", "w2"}));
  app.add_option("--warmup", warmup, "steps not measured per run (default: w1 20, w2 5)")
      ->check(CLI::Range(0, 100000));
  app.add_option("--steps", steps, "steps measured per run (default: w1 200, w2 50)")
      ->check(CLI::Range(0, 100000));
  app.add_option("--rounds", rounds, "repeat the whole sequence and pool the samples")
      ->check(CLI::Range(1, 100));
  app.add_option("--threads", threadValues,
                 "thread counts to measure ('all' = every core), default 1,all")
      ->delimiter(',');
  app.add_option("--strategies", only, "only these strategies (default: every registered one)")
      ->delimiter(',');
  app.add_flag("!--no-variants", variants,
               "skip the option variants (representation gradients, ...)");
  app.add_option("--python", python,
                 "interpreter of the reference loop (Debian's python3-torch); 'none' skips it");
  app.add_option("--reference", script, "the reference loop script");
  app.add_option("--csv", csvPath, "also write the results as CSV");
  app.add_option("--markdown", markdownPath, "also write the tables as Markdown");
  CLI11_PARSE(app, argc, argv);
  std::vector<int64_t> threadCounts;
  try {
    threadCounts = parseThreads(threadValues);
  } catch (const std::exception& e) {
    std::cerr << "fulcrum-bench: --threads: " << e.what() << "\n";
    return 2;
  }
  for (const auto& name : only) {
    const auto& table = strategyTable();
    if (std::none_of(table.begin(), table.end(),
                     [&](const StrategyInfo& r) { return r.name == name; })) {
      std::cerr << "fulcrum-bench: unknown strategy '" << name << "'\n";
      return 2;
    }
  }

  // The cases, probed on W1's tasks (validation does not depend on the data).
  std::vector<Case> cases;
  {
    for (const auto& row : strategyTable()) {
      if (!only.empty() && std::find(only.begin(), only.end(), row.name) == only.end()) continue;
      std::vector<std::string> optionSets{""};
      if (variants)
        optionSets.insert(optionSets.end(), kVariantOptions.begin(), kVariantOptions.end());
      for (const auto& options : optionSets) {
        const std::string yaml = options.empty()
                                     ? fmt::format("{{name: {}}}", row.name)
                                     : fmt::format("{{name: {}, {}}}", row.name, options);
        try {
          const ExperimentSpec spec = parseExperiment(workloads().front().yaml, "bench.yaml",
                                                      {"strategy=" + yaml, "data.train_size=100"});
          const auto instance = makeStrategy(spec.strategy, spec.tasks);
          const std::string label =
              options.empty() ? row.name : fmt::format("{}{{{}}}", row.name, options);
          cases.push_back({label, row.name, yaml, "", toString(instance->needs())});
        } catch (const ConfigError&) {
          // The strategy has no such option: no variant.
        }
      }
    }
  }
  PythonReference reference;
  if (python != "none") {
    if (access(python.c_str(), X_OK) != 0 || access(script.c_str(), R_OK) != 0) {
      std::cerr << fmt::format(
          "fulcrum-bench: no Python reference ({} or {} missing; "
          "apt-get install python3-torch, or --python none)\n",
          python, script);
      return 2;
    }
    reference.interpreter = python;
    reference.script = script;
  }
  std::string pythonDescription;
  if (!reference.interpreter.empty()) {
    // The comparison is fair only with the same torch version and BLAS: say which.
    const std::string text =
        programOutput({reference.interpreter, reference.script, "--describe"}, {});
    pythonDescription = text.rfind("ok ", 0) == 0 ? text.substr(3, text.find('\n') - 3) : "unknown";
  }
  std::vector<Case> pythonCases;
  if (!reference.interpreter.empty()) {
    for (const auto& m : kPythonMethods) {
      bool wanted = only.empty() || m.method == "equal";
      for (const auto& c : cases) {
        wanted = wanted || pythonCounterpart(c.name, c.needs) == m.method;
      }
      if (wanted) pythonCases.push_back({"python:" + m.method, "", "", m.method, m.needs});
    }
  }
  const Case equalCpp{"fixed", "fixed", "{name: fixed}", "", "losses"};
  const Case equalPython{"python:equal", "", "", "equal", "losses"};

  const std::string startLoad = loadAverage();
  std::cerr << fmt::format("fulcrum-bench: {} cases, {} Python methods, threads {}, load {}\n",
                           cases.size(), pythonCases.size(), fmt::join(threadCounts, ","),
                           startLoad);
  std::vector<Row> rows;
  int failures = 0;
  for (const auto& workload : workloads()) {
    if (std::find(workloadNames.begin(), workloadNames.end(), workload.name) == workloadNames.end())
      continue;
    const int64_t w = warmup > 0 ? warmup : workload.warmup;
    const int64_t s = steps > 0 ? steps : workload.steps;
    char tmpl[] = "/tmp/fulcrum-bench-XXXXXX";
    if (!reference.interpreter.empty()) {
      if (mkdtemp(tmpl) == nullptr) {
        std::cerr << "fulcrum-bench: cannot create a temporary folder\n";
        return 2;
      }
      reference.dataDirectory = tmpl;
      const std::string dumped = childOutput([&](FILE* out) { dumpData(workload, tmpl, out); });
      if (dumped.rfind("ok", 0) != 0) {
        std::cerr << fmt::format("fulcrum-bench: {}: cannot write its data: {}\n", workload.name,
                                 dumped);
        return 1;
      }
    }
    for (int64_t threads : threadCounts) {
      // rows of this (workload, threads), in case order; equal weighting first.
      std::vector<Row> block;
      auto rowOf = [&](const Case& c) -> Row& {
        for (auto& r : block)
          if (r.c.label == c.label) return r;
        block.push_back({workload.name, threads, c, {}, {}, s});
        return block.back();
      };
      rowOf(equalCpp);
      for (const auto& c : cases)
        if (c.label != "fixed") rowOf(c);
      if (!reference.interpreter.empty()) {
        rowOf(equalPython);
        for (const auto& c : pythonCases)
          if (c.method != "equal") rowOf(c);
      }
      for (int64_t round = 0; round < rounds; ++round) {
        for (const bool isPython : {false, true}) {
          if (isPython && reference.interpreter.empty()) continue;
          const Case& equal = isPython ? equalPython : equalCpp;
          Samples before = runCase(workload, equal, w, s, threads, reference);
          rowOf(equal).samples.append(before);
          for (auto& row : block) {
            if (row.c.label == equal.label || row.c.method.empty() == isPython) continue;
            const Samples measured = runCase(workload, row.c, w, s, threads, reference);
            const Samples after = runCase(workload, equal, w, s, threads, reference);
            row.samples.append(measured);
            row.equal.append(before);
            row.equal.append(after);
            rowOf(equal).samples.append(after);
            std::cerr << fmt::format("  {} threads={} {:<40} {:8.3f} ms  × {:.2f} (CPU × {:.2f})\n",
                                     workload.name, threads, row.c.label, median(measured.wall),
                                     median(measured.wall) / median(row.equal.wall),
                                     median(measured.cpu) / median(row.equal.cpu));
            before = after;
          }
        }
      }
      for (auto& row : block) {
        if (row.c.label == equalCpp.label || row.c.label == equalPython.label)
          row.equal = row.samples;
        if (!row.samples.error.empty()) {
          std::cerr << fmt::format("{} {}: {}\n", workload.name, row.c.label, row.samples.error);
          ++failures;
        }
        rows.push_back(row);
      }
    }
    if (!reference.dataDirectory.empty()) {
      std::filesystem::remove_all(reference.dataDirectory);
      reference.dataDirectory.clear();
    }
  }
  const std::string endLoad = loadAverage();

  // Reports.
  auto find = [&](const std::string& workload, int64_t threads,
                  const std::string& label) -> const Row* {
    for (const auto& r : rows)
      if (r.workload == workload && r.threads == threads && r.c.label == label) return &r;
    return nullptr;
  };
  std::ostringstream csv, md;
  csv << "workload,threads,implementation,case,needs,steps,median_ms,p10_ms,p90_ms,cpu_median_ms,"
         "forward_ms,strategy_ms,backward_ms,optimizer_ms,ratio_to_equal,cpu_ratio_to_equal,peak_"
         "rss_mb,"
         "python_reference,python_median_ms,speedup_vs_python\n";
  md << fmt::format(
      "Measured {} on {} ({} cores, `nproc` {}), LibTorch {}, fulcrum commit {}; "
      "load average (1, 5, 15 min) {} at the start, {} at the end.\n\n",
      utcNow(), cpuModel(), std::thread::hardware_concurrency(),
      std::thread::hardware_concurrency(), TORCH_VERSION, FULCRUM_GIT_COMMIT, startLoad, endLoad);
  if (!pythonDescription.empty()) md << "Python reference: " << pythonDescription << ".\n\n";
  std::string currentBlock;
  for (const auto& r : rows) {
    if (!r.samples.error.empty()) continue;
    const bool isPython = !r.c.method.empty();
    const double m = median(r.samples.wall);
    const double ratio = m / median(r.equal.wall);
    const double cpuRatio = median(r.samples.cpu) / median(r.equal.cpu);
    std::string refName, refLabel, refMs, speedup;
    if (!isPython) {
      bool sameMethod = true;
      refName = pythonCounterpart(r.c.name, r.c.needs, &sameMethod);
      if (const Row* p = find(r.workload, r.threads, "python:" + refName);
          p != nullptr && p->samples.error.empty()) {
        refLabel = sameMethod ? refName : refName + " (lower bound)";
        refMs = fmt::format("{:.3f}", median(p->samples.wall));
        speedup = fmt::format("{:.2f}", median(p->samples.wall) / m);
      } else {
        refName.clear();
      }
    }
    csv << fmt::format(
        "{},{},{},\"{}\",{},{},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:."
        "4f},{:.1f},{},{},{}\n",
        r.workload, r.threads, isPython ? "python" : "cpp", r.c.label, r.c.needs,
        r.samples.wall.size(), m, quantile(r.samples.wall, 0.1), quantile(r.samples.wall, 0.9),
        median(r.samples.cpu), median(r.samples.forward), median(r.samples.strategy),
        median(r.samples.backward), median(r.samples.optimizer), ratio, cpuRatio, r.samples.peakMb,
        refName, refMs, speedup);
    const std::string blockName = fmt::format("{} threads={}", r.workload, r.threads);
    if (blockName != currentBlock) {
      currentBlock = blockName;
      md << fmt::format("\n**{}, {} thread{}** ({} measured steps per case)\n\n",
                        r.workload == "w1" ? "W1 GradNorm toy (T = 10, batch 100)"
                                           : "W2 Multi-Fashion LeNet (T = 2, batch 256)",
                        r.threads, r.threads == 1 ? "" : "s", r.steps * rounds)
         << "| case | needs | ms/step median (p10–p90) | × equal | CPU × equal | fwd / strategy / "
            "bwd / opt ms "
            "| peak RSS MB | Python reference | Python ms | Python ÷ C++ "
            "|\n|---|---|---|---|---|---|---|---|---|---|\n";
    }
    md << fmt::format(
        "| {} | {} | {:.3f} ({:.3f}–{:.3f}) | {:.2f} | {:.2f} | {:.2f} / {:.2f} / {:.2f} / {:.2f} "
        "| {:.0f} | {} | {} | {} |\n",
        r.c.label, r.c.needs, m, quantile(r.samples.wall, 0.1), quantile(r.samples.wall, 0.9),
        ratio, cpuRatio, median(r.samples.forward), median(r.samples.strategy),
        median(r.samples.backward), median(r.samples.optimizer), r.samples.peakMb, refLabel, refMs,
        speedup);
  }
  // The thread counts side by side: equal weighting and the slowest case.
  if (threadCounts.size() > 1) {
    md << "\n**Threads** (median ms/step of equal weighting; each thread count measured in this "
          "run)\n\n| workload |";
    for (int64_t t : threadCounts) md << fmt::format(" {} thread{} |", t, t == 1 ? "" : "s");
    md << "\n|---|";
    for (std::size_t k = 0; k < threadCounts.size(); ++k) md << "---|";
    md << "\n";
    for (const auto& workload : workloadNames) {
      for (const std::string label : {"fixed", "python:equal"}) {
        if (find(workload, threadCounts.front(), label) == nullptr) continue;
        md << "| " << workload << (label == "fixed" ? " C++" : " Python") << " |";
        for (int64_t t : threadCounts) {
          const Row* r = find(workload, t, label);
          md << (r != nullptr && r->samples.error.empty()
                     ? fmt::format(" {:.3f} |", median(r->samples.wall))
                     : " – |");
        }
        md << "\n";
      }
    }
  }
  std::cout << md.str();
  if (!csvPath.empty()) std::ofstream(csvPath) << csv.str();
  if (!markdownPath.empty()) std::ofstream(markdownPath) << md.str();
  return failures == 0 ? 0 : 1;
}
