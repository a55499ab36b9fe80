// fulcrum-bench: time one training step of every strategy on the two
// reference workloads, relative to equal weighting measured in the same run.
//
//   W1  the GradNorm toy: mlp trunk 250→100×4, T = 10 linear heads 100→100,
//       batch 100, MSE, Adam
//   W2  Multi-Fashion: LeNet trunk, T = 2, batch 256, cross-entropy, Adam
//
// Each (workload, strategy) runs in its own child process, so its peak
// resident memory is its own and no OpenMP pool is shared across a fork.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <torch/torch.h>

#include "framework/experiment.h"
#include "framework/trainer.h"
#include "strategies/registry.h"

namespace {

using namespace fulcrum;

const char* kW1 = R"(
name: bench_w1
data: {kind: gradnorm_toy, tasks: 10, val_size: 10, test_size: 10}
model: {trunk: {kind: mlp, hidden: [100, 100, 100, 100]}, head: {kind: linear}}
train: {epochs: 1, batch_size: 100, optimizer: {kind: adam, lr: 0.001}}
strategy: {name: fixed}
)";

const char* kW2 = R"(
name: bench_w2
data: {kind: multi_fashion, val_size: 10, test_size: 10}
model: {trunk: {kind: lenet}, head: {kind: linear}}
train: {epochs: 1, batch_size: 256, optimizer: {kind: adam, lr: 0.001}}
strategy: {name: fixed}
)";

/// Step timings of one run, from the trainer's own per-step records.
struct TimingLog : RunLog {
  std::vector<double> total;
  void begin(const TrialDescription&) override {}
  void step(const StepRecord& r) override { total.push_back(r.timings.back()); }
  void epoch(const EpochRecord&) override {}
  void end(const std::string&, const std::string&) override {}
};

struct Measurement {
  double median = 0, p10 = 0, p90 = 0, peakMb = 0;
  std::string error;
};

double quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const auto low = static_cast<std::size_t>(position);
  const std::size_t high = std::min(low + 1, values.size() - 1);
  return values[low] + (position - static_cast<double>(low)) * (values[high] - values[low]);
}

/// Runs in the child: trains `warmup + steps` steps and writes one line
/// "median p10 p90 peak_mb" (or "error MESSAGE") to `out`.
void measure(const char* workload, const std::string& strategy, int64_t warmup, int64_t steps,
             int64_t threads, FILE* out) {
  try {
    const int64_t batch = workload == kW1 ? 100 : 256;
    ExperimentSpec spec = parseExperiment(
        workload, "bench.yaml",
        {"strategy={name: " + strategy + "}", fmt::format("data.train_size={}", batch * (warmup + steps)),
         fmt::format("train.threads={}", threads)});
    auto instance = makeStrategy(spec.strategy, spec.tasks);
    const MultiTaskData data = loadData(spec);
    TimingLog log;
    const TrialResult result = train(spec, data, *instance, log, {});
    if (result.status != "completed") throw std::runtime_error(result.error);
    std::vector<double> measured(log.total.begin() + warmup, log.total.end());
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::fprintf(out, "%.6f %.6f %.6f %.1f\n", quantile(measured, 0.5), quantile(measured, 0.1),
                 quantile(measured, 0.9), static_cast<double>(usage.ru_maxrss) / 1024.0);
  } catch (const c10::Error& e) {
    std::fprintf(out, "error %s\n", e.what_without_backtrace());
  } catch (const std::exception& e) {
    std::fprintf(out, "error %s\n", e.what());
  }
}

Measurement measureInChild(const char* workload, const std::string& strategy, int64_t warmup,
                           int64_t steps, int64_t threads) {
  int pipeFds[2];
  if (pipe(pipeFds) != 0) return {0, 0, 0, 0, "pipe failed"};
  const pid_t pid = fork();
  if (pid == 0) {
    close(pipeFds[0]);
    FILE* out = fdopen(pipeFds[1], "w");
    measure(workload, strategy, warmup, steps, threads, out);
    std::fclose(out);
    _exit(0);
  }
  close(pipeFds[1]);
  std::string text;
  char buffer[512];
  ssize_t n;
  while ((n = read(pipeFds[0], buffer, sizeof(buffer))) > 0) text.append(buffer, static_cast<std::size_t>(n));
  close(pipeFds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  Measurement m;
  std::istringstream in(text);
  std::string first;
  in >> first;
  if (first == "error" || first.empty()) {
    std::getline(in, m.error);
    if (m.error.empty()) m.error = fmt::format("child ended with status {}", status);
    return m;
  }
  m.median = std::stod(first);
  in >> m.p10 >> m.p90 >> m.peakMb;
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fulcrum-bench: per-step time of every strategy relative to equal weighting"};
  std::string workloads = "w1,w2";
  int64_t warmup = 20, steps = 200, threads = 1;
  std::string csvPath, markdownPath;
  std::vector<std::string> only;
  app.add_option("--workloads", workloads, "w1, w2 or w1,w2");
  app.add_option("--warmup", warmup, "steps not measured")->check(CLI::Range(1, 100000));
  app.add_option("--steps", steps, "steps measured")->check(CLI::Range(3, 100000));
  app.add_option("--threads", threads, "intra-op threads per run")->check(CLI::Range(1, 1024));
  app.add_option("--strategies", only, "only these strategies (default: every registered one)")->delimiter(',');
  app.add_option("--csv", csvPath, "also write the table as CSV");
  app.add_option("--markdown", markdownPath, "also write the table as Markdown");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> names;
  for (const auto& row : strategyTable()) {
    if (only.empty() || std::find(only.begin(), only.end(), row.name) != only.end()) names.push_back(row.name);
  }
  std::ostringstream csv, markdown;
  csv << "workload,strategy,needs,median_ms,p10_ms,p90_ms,ratio_to_equal,peak_rss_mb\n";
  markdown << fmt::format("| workload | strategy | needs | median ms/step | p10–p90 | × equal | peak RSS MB |\n"
                          "|---|---|---|---|---|---|---|\n");
  int failures = 0;
  for (const std::string& workload : {std::string("w1"), std::string("w2")}) {
    if (workloads.find(workload) == std::string::npos) continue;
    const char* yaml = workload == "w1" ? kW1 : kW2;
    const Measurement equal = measureInChild(yaml, "fixed", warmup, steps, threads);
    for (const auto& name : names) {
      const Measurement m = name == "fixed" ? equal : measureInChild(yaml, name, warmup, steps, threads);
      std::string needs;
      for (const auto& row : strategyTable()) if (row.name == name) needs = toString(row.needs);
      if (!m.error.empty()) {
        std::cerr << fmt::format("{} {}: {}\n", workload, name, m.error);
        ++failures;
        continue;
      }
      const double ratio = equal.error.empty() ? m.median / equal.median : 0.0;
      csv << fmt::format("{},{},{},{:.4f},{:.4f},{:.4f},{:.3f},{:.1f}\n", workload, name, needs, m.median,
                         m.p10, m.p90, ratio, m.peakMb);
      const std::string line = fmt::format("| {} | {} | {} | {:.3f} | {:.3f}–{:.3f} | {:.2f} | {:.0f} |", workload,
                                           name, needs, m.median, m.p10, m.p90, ratio, m.peakMb);
      markdown << line << "\n";
      std::cout << line << std::endl;
    }
  }
  if (!csvPath.empty()) std::ofstream(csvPath) << csv.str();
  if (!markdownPath.empty()) std::ofstream(markdownPath) << markdown.str();
  return failures == 0 ? 0 : 1;
}
