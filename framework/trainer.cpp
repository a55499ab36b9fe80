#include "framework/trainer.h"

#include <dlfcn.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "framework/checkpoint.h"
#include "framework/gradients.h"
#include "framework/model.h"
#include "framework/sweep.h"
#include "framework/update.h"

namespace fulcrum {

namespace {

using Clock = std::chrono::steady_clock;

double millisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

/// A loss or weight that is not finite, or an interruption: ends the trial as failed.
class TrialFailure : public std::runtime_error {
 public:
  explicit TrialFailure(const std::string& what, bool interrupted = false)
      : std::runtime_error(what), interrupted_(interrupted) {}
  /// True if the trial was stopped (it may be resumed), not broken.
  bool interrupted() const { return interrupted_; }

 private:
  bool interrupted_;
};

std::string generatorText(const std::mt19937_64& generator) {
  std::ostringstream text;
  text << generator;
  return text.str();
}

const std::vector<std::string> kSplits = {"train", "val", "test"};
// total_ms is the training step without gradient_log_ms, the time spent on
// gradient diagnostics (which only some steps take).
const std::vector<std::string> kTimings = {"forward_ms",   "strategy_ms",     "backward_ms",
                                           "optimizer_ms", "gradient_log_ms", "total_ms"};

std::string shapeText(const torch::Tensor& tensor) {
  std::string text;
  for (int64_t d : tensor.sizes()) text += (text.empty() ? "" : " × ") + std::to_string(d);
  return text.empty() ? "a scalar" : text;
}

/// Refuses targets that do not fit the head's outputs: LibTorch's losses
/// would broadcast an N target against N × 1 outputs into N × N.
void checkLossShapes(TaskKind kind, const torch::Tensor& outputs, const torch::Tensor& targets) {
  const bool rows = outputs.dim() == 2 && targets.dim() == 1 && outputs.size(0) == targets.size(0);
  const bool fits = kind == TaskKind::kRegression ? outputs.sizes() == targets.sizes()
                    : kind == TaskKind::kBinary   ? rows && outputs.size(1) == 1
                                                  : rows;
  if (!fits) {
    throw std::invalid_argument(
        fmt::format("{} loss: targets are {} for outputs {} (expected {})", toString(kind),
                    shapeText(targets), shapeText(outputs),
                    kind == TaskKind::kRegression ? "the outputs' shape" : "one label per row"));
  }
}

torch::Tensor taskLoss(TaskKind kind, const torch::Tensor& outputs, const torch::Tensor& targets) {
  checkLossShapes(kind, outputs, targets);
  switch (kind) {
    case TaskKind::kClassification:
      return torch::nn::functional::cross_entropy(outputs, targets);
    case TaskKind::kBinary:
      return torch::nn::functional::binary_cross_entropy_with_logits(outputs.squeeze(-1), targets);
    case TaskKind::kRegression:
      break;
  }
  return torch::nn::functional::mse_loss(outputs, targets);
}

/// The rows of a batch that carry a task's label (data with missing labels).
struct Labelled {
  torch::Tensor rows;  ///< indices of the labelled rows; undefined when every row is labelled
  int64_t count = 0;   ///< how many rows are labelled
};

Labelled labelledRows(TaskKind kind, const torch::Tensor& targets, bool masking) {
  if (!masking) return {torch::Tensor(), targets.size(0)};
  torch::Tensor known = kind == TaskKind::kClassification ? targets.ne(kMissingClass)
                        : targets.dim() > 1 ? targets.isnan().logical_not().flatten(1).all(1)
                                            : targets.isnan().logical_not();
  const int64_t count = known.sum().item<int64_t>();
  if (count == targets.size(0)) return {torch::Tensor(), count};
  return {known.nonzero().squeeze(1), count};
}

torch::Tensor rowsOf(const torch::Tensor& tensor, const Labelled& labelled) {
  return labelled.rows.defined() ? tensor.index_select(0, labelled.rows) : tensor;
}

/// The task's loss averaged over its labelled rows only; with none, an exact
/// zero that keeps the head in the graph, so every gradient of it is zero.
torch::Tensor maskedLoss(TaskKind kind, const torch::Tensor& outputs, const torch::Tensor& targets,
                         const Labelled& labelled) {
  if (labelled.count == 0) return outputs.sum() * 0.0;
  return taskLoss(kind, rowsOf(outputs, labelled), rowsOf(targets, labelled));
}

/// Sums of a task's metrics over examples, turned into means by `means()`.
struct MetricSums {
  double loss = 0.0, squared = 0.0, absolute = 0.0, correct = 0.0;
  int64_t examples = 0, elements = 0;

  void add(TaskKind kind, const torch::Tensor& outputs, const torch::Tensor& targets,
           double meanLoss) {
    const int64_t n = outputs.size(0);
    loss += meanLoss * static_cast<double>(n);
    examples += n;
    if (kind == TaskKind::kRegression) {
      const torch::Tensor diff = outputs - targets;
      squared += diff.square().sum().item<double>();
      absolute += diff.abs().sum().item<double>();
      elements += diff.numel();
    } else if (kind == TaskKind::kClassification) {
      correct += outputs.argmax(1).eq(targets).sum().item<double>();
    } else {
      correct += outputs.squeeze(-1).gt(0).eq(targets.gt(0.5)).sum().item<double>();
    }
  }

  std::vector<double> means(TaskKind kind) const {
    if (examples == 0)
      return std::vector<double>(metricNames(kind).size(), std::nan(""));  // no labelled row
    const double n = static_cast<double>(std::max<int64_t>(examples, 1));
    if (kind == TaskKind::kRegression) {
      const double e = static_cast<double>(std::max<int64_t>(elements, 1));
      return {loss / n, squared / e, absolute / e};
    }
    return {loss / n, correct / n};
  }
};

std::vector<std::vector<double>> evaluate(MultiTaskModel& model, const Split& split,
                                          const std::vector<TaskSpec>& tasks, int64_t batchSize,
                                          bool masking) {
  torch::NoGradGuard noGrad;
  model.eval();
  std::vector<MetricSums> sums(tasks.size());
  for (int64_t start = 0; start < split.size(); start += batchSize) {
    const int64_t length = std::min(batchSize, split.size() - start);
    const ModelOutput forward = model.forward({split.inputs.narrow(0, start, length)});
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      const torch::Tensor& outputs = forward.outputs[t];
      const torch::Tensor targets = split.targets[t].narrow(0, start, length);
      const Labelled labelled = labelledRows(tasks[t].kind, targets, masking);
      if (labelled.count == 0) continue;
      sums[t].add(tasks[t].kind, rowsOf(outputs, labelled), rowsOf(targets, labelled),
                  maskedLoss(tasks[t].kind, outputs, targets, labelled).item<double>());
    }
  }
  model.train();
  std::vector<std::vector<double>> values;
  for (std::size_t t = 0; t < tasks.size(); ++t) values.push_back(sums[t].means(tasks[t].kind));
  return values;
}

/// The trainable tensors of a trial, listed once: the shared ones, each
/// task's, and the strategy's own.
struct ParameterLists {
  std::vector<torch::Tensor> shared;
  std::vector<std::vector<torch::Tensor>> perTask;  ///< per task
  std::vector<torch::Tensor> allTaskSpecific;       ///< every task's, in task order
  std::vector<torch::Tensor> strategy;

  ParameterLists(MultiTaskModel& model, Strategy& own, std::size_t taskCount)
      : shared(model.sharedParameters()), strategy(own.parameters()) {
    for (std::size_t t = 0; t < taskCount; ++t) {
      perTask.push_back(model.taskParameters(t));
      allTaskSpecific.insert(allTaskSpecific.end(), perTask.back().begin(), perTask.back().end());
    }
    // A parameter in neither list (or in both) would be trained wrongly by
    // every gradient strategy: a broken model, refused before step 0.
    std::set<const void*> listed;
    std::size_t entries = 0;
    for (const auto* list : {&shared, &allTaskSpecific}) {
      for (const auto& p : *list) {
        listed.insert(p.unsafeGetTensorImpl());
        ++entries;
      }
    }
    const auto all = model.named_parameters();
    for (const auto& item : all) {
      if (item.value().requires_grad() && listed.count(item.value().unsafeGetTensorImpl()) == 0) {
        throw std::logic_error(
            fmt::format("the model's parameter '{}' is neither shared nor any task's", item.key()));
      }
    }
    if (entries != listed.size() || entries != all.size())
      throw std::logic_error("the model lists a parameter twice or one it does not have");
  }
};

/// What is wrong with `values` (one per task), or "" if all are finite.
/// Tasks not `present` (no label in this step's batch) have no loss: skipped.
std::string nonFinite(const std::vector<double>& values, const std::vector<TaskSpec>& tasks,
                      const char* quantity, int64_t step, int64_t epoch,
                      const std::vector<bool>& present = {}) {
  for (std::size_t t = 0; t < values.size(); ++t) {
    if (!present.empty() && !present[t]) continue;  // no label this step: no loss
    if (!std::isfinite(values[t])) {
      return fmt::format("{} of task '{}' is {} at step {} (epoch {})", quantity, tasks[t].name,
                         std::isnan(values[t]) ? "NaN" : "infinite", step, epoch + 1);
    }
  }
  return "";
}

/// What is wrong with the model's extra losses, or "" if all are finite.
std::string nonFiniteExtra(const std::vector<double>& values, const std::vector<std::string>& names,
                           int64_t step, int64_t epoch) {
  for (std::size_t k = 0; k < values.size(); ++k) {
    if (std::isfinite(values[k])) continue;
    return fmt::format("the model's loss '{}' is {} at step {} (epoch {})",
                       k < names.size() ? names[k] : std::to_string(k),
                       std::isnan(values[k]) ? "NaN" : "infinite", step, epoch + 1);
  }
  return "";
}

void checkFinite(const std::vector<double>& values, const std::vector<TaskSpec>& tasks,
                 const char* quantity, int64_t step, int64_t epoch,
                 const std::vector<bool>& present = {}) {
  const std::string problem = nonFinite(values, tasks, quantity, step, epoch, present);
  if (!problem.empty()) throw TrialFailure(problem);
}

/// What is wrong with the gradients about to be applied, or "" if all are
/// finite: a head's names its task; the shared parameters' is the strategy's
/// combination (or the objective's gradient); then the strategy's own.
std::string nonFiniteGradient(const ParameterLists& parameters, const StepOutput& update,
                              const std::vector<TaskSpec>& tasks, int64_t step, int64_t epoch) {
  torch::NoGradGuard noGrad;
  auto sumOf = [](const std::vector<torch::Tensor>& tensors) {
    torch::Tensor sum = torch::zeros({}, torch::kFloat64);
    for (const auto& p : tensors) {
      if (p.grad().defined()) sum += p.grad().sum().to(torch::kFloat64);
    }
    return sum;
  };
  std::vector<torch::Tensor> sums = {sumOf(parameters.shared), sumOf(parameters.strategy)};
  for (const auto& head : parameters.perTask) sums.push_back(sumOf(head));
  // One synchronisation per step; a NaN or ±inf anywhere makes the total non-finite.
  const torch::Tensor all = torch::stack(sums);
  if (std::isfinite(all.sum().item<double>())) return "";
  const std::vector<double> values = toDoubles(all);
  auto describe = [](double v) { return std::isnan(v) ? "NaN" : "infinite"; };
  for (std::size_t t = 0; t < tasks.size(); ++t) {
    if (!std::isfinite(values[2 + t])) {
      return fmt::format("gradient of task '{}' (its head) is {} at step {} (epoch {})",
                         tasks[t].name, describe(values[2 + t]), step, epoch + 1);
    }
  }
  if (!std::isfinite(values[0])) {
    return fmt::format(
        "{} of the shared parameters is {} at step {} (epoch {})",
        update.kind == StepOutput::Kind::kObjective ? "gradient" : "combined gradient (direction)",
        describe(values[0]), step, epoch + 1);
  }
  return fmt::format("gradient of the strategy's own parameters is {} at step {} (epoch {})",
                     describe(values[1]), step, epoch + 1);
}

/// ‖∇L_i‖ per task and the cosine of each pair i < j, from the T×P matrix of
/// per-task gradients on the shared parameters (in float64).
void gradientGeometry(const torch::Tensor& grads, GradientRecord& record) {
  const torch::Tensor g = grads.detach().to(torch::kFloat64);
  const torch::Tensor gram = g.mm(g.t()).contiguous();
  const int64_t tasks = gram.size(0);
  const double* entries = gram.data_ptr<double>();
  record.norms.clear();
  record.cosines.clear();
  for (int64_t i = 0; i < tasks; ++i) record.norms.push_back(std::sqrt(entries[i * tasks + i]));
  for (int64_t i = 0; i < tasks; ++i) {
    for (int64_t j = i + 1; j < tasks; ++j) {
      const double scale = record.norms[i] * record.norms[j];
      record.cosines.push_back(scale > 0.0 ? entries[i * tasks + j] / scale : std::nan(""));
    }
  }
}

/// ‖x‖ over every tensor of `tensors` together, in float64.
double jointNorm(const std::vector<torch::Tensor>& tensors) {
  double squares = 0.0;
  for (const auto& tensor : tensors) {
    if (tensor.defined())
      squares += tensor.detach().to(torch::kFloat64).square().sum().item<double>();
  }
  return std::sqrt(squares);
}

/// Records the error that ended a trial in its log. A log that cannot take
/// it (a full disk, most often) must not replace that error with its own:
/// the caller rethrows the original.
void endAfterError(RunLog& log, const std::string& error) {
  try {
    log.end("failed", error);
  } catch (const std::exception&) {
  }
}

/// Removes the trial's checkpoint (and nothing if there is none).
void removeCheckpoint(const std::string& path) {
  if (path.empty()) return;
  std::error_code ignored;
  std::filesystem::remove(path, ignored);
}

}  // namespace

torch::Tensor labelledLoss(TaskKind kind, const torch::Tensor& outputs,
                           const torch::Tensor& targets) {
  return maskedLoss(kind, outputs, targets, labelledRows(kind, targets, true));
}

int64_t configureThreads(int64_t requested) {
  const int64_t threads = requested > 0 ? requested : 1;
  torch::set_num_threads(static_cast<int>(threads));
  // OpenBLAS keeps its own thread pool beside OpenMP's; two pools on two
  // cores oversubscribe them (3-4x slower measured), so bound it as well.
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(static_cast<int>(threads));
  }
  return threads;
}

namespace {

/// Makes glibc's malloc keep the memory a step frees for the next step
/// (mmap threshold 32 MiB, trim threshold 1 GiB). Process-wide and
/// idempotent; leaves GLIBC_TUNABLES' malloc settings alone (the user's
/// choice). Returns true if it changed the settings.
bool configureAllocator() {
  // glibc returns a freed block above 128 KiB to the kernel (munmap, or a
  // trim of the heap's top), so the same temporaries fault their pages in
  // again at every step; in a VM each fault is expensive. Measured here:
  // GradDrop's combination of a 10 × 10000 gradient matrix (400 KB
  // temporaries) took 20 ms with glibc's defaults, 2 ms with these (see
  // fulcrum-bench). The memory kept is at most the trial's peak anyway.
  static const bool changed = [] {
#if defined(__GLIBC__)
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    if (tunables != nullptr && std::string(tunables).find("malloc") != std::string::npos)
      return false;
    return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
#else
    return false;
#endif
  }();
  return changed;
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> makeOptimizer(const OptimizerSpec& spec,
                                                       std::vector<torch::Tensor> model,
                                                       std::vector<torch::Tensor> strategy) {
  using namespace torch::optim;
  std::vector<OptimizerParamGroup> groups;
  if (spec.kind == "sgd") {
    auto options = SGDOptions(spec.lr).momentum(spec.momentum).weight_decay(spec.weightDecay);
    groups.emplace_back(std::move(model), std::make_unique<SGDOptions>(options));
    if (!strategy.empty()) {
      groups.emplace_back(std::move(strategy),
                          std::make_unique<SGDOptions>(SGDOptions(options).weight_decay(0)));
    }
    return std::make_unique<SGD>(std::move(groups), options);
  }
  auto options = AdamOptions(spec.lr).weight_decay(spec.weightDecay);
  groups.emplace_back(std::move(model), std::make_unique<AdamOptions>(options));
  if (!strategy.empty()) {
    groups.emplace_back(std::move(strategy),
                        std::make_unique<AdamOptions>(AdamOptions(options).weight_decay(0)));
  }
  return std::make_unique<Adam>(std::move(groups), options);
}

TrialResult train(const ExperimentSpec& spec, const MultiTaskData& data, MultiTaskModel& model,
                  Strategy& strategy, RunLog& log, TrialDescription description,
                  const TrainHooks& hooks) {
  const std::vector<TaskSpec>& tasks = spec.tasks;
  const std::size_t taskCount = tasks.size();
  TORCH_CHECK(data.train.targets.size() == taskCount, "data has ", data.train.targets.size(),
              " targets for ", taskCount, " tasks");
  configureThreads(spec.train.threads);
  configureAllocator();

  TORCH_CHECK(model.taskCount() == taskCount, "a model of ", model.taskCount(), " tasks for ",
              taskCount, " tasks");
  const int64_t batchSize = spec.train.batchSize;
  int64_t stepsPerEpoch = (data.train.size() + batchSize - 1) / batchSize;
  if (spec.train.maxStepsPerEpoch > 0)
    stepsPerEpoch = std::min(stepsPerEpoch, spec.train.maxStepsPerEpoch);

  StrategyContext context;
  context.tasks = tasks;
  context.sharedParameterCount = countElements(model.sharedParameters());
  context.lastSharedLayerParameterCount = countElements(model.lastSharedLayer());
  context.stepsPerEpoch = stepsPerEpoch;
  context.seed = spec.seed;
  strategy.attach(context);
  auto optimizer = makeOptimizer(spec.train.optimizer, model.parameters(), strategy.parameters());
  const ParameterLists parameters(model, strategy, taskCount);
  AutogradGradientSource source(parameters.shared, model.lastSharedLayer());
  UpdateTargets updateTargets{parameters.shared, parameters.allTaskSpecific, {}, {}};

  // Where training starts: step 0, or the end of the checkpointed epoch of
  // an interrupted run (read before anything is logged, so that a checkpoint
  // that cannot be used changes no file).
  const std::string checkpointPath = spec.train.checkpointEvery > 0 ? hooks.checkpointPath : "";
  const std::string config = canonicalConfig(spec.root);
  TrainingPosition position;
  std::mt19937_64 shuffle(spec.seed * 0x9E3779B97F4A7C15ULL + 1);
  if (hooks.resume && !hooks.checkpointPath.empty() &&
      std::filesystem::exists(hooks.checkpointPath)) {
    LoadedCheckpoint loaded = loadCheckpoint(hooks.checkpointPath, config, model, *optimizer);
    position = std::move(loaded.position);
    if (position.epochs < 1 || position.epochs >= spec.train.epochs ||
        position.step != position.epochs * stepsPerEpoch) {
      throw CheckpointError(fmt::format(
          "checkpoint '{}' is at epoch {}, step {}: not a point of this trial ({} epochs of {} "
          "steps)",
          hooks.checkpointPath, position.epochs, position.step, spec.train.epochs, stepsPerEpoch));
    }
    try {
      strategy.loadState(loaded.strategy);
    } catch (const std::exception& e) {
      throw CheckpointError(fmt::format("checkpoint '{}': {}", hooks.checkpointPath, e.what()));
    }
    std::istringstream(position.shuffle) >> shuffle;
    // Another thread count splits the reductions differently, and the curves
    // would not continue bit for bit: the trial keeps the checkpoint's count.
    if (position.threads > 0 && position.threads != torch::get_num_threads()) {
      const int64_t asked = torch::get_num_threads();
      configureThreads(position.threads);
      if (hooks.notice) {
        hooks.notice(fmt::format(
            "continues with the {} thread(s) of checkpoint {} (train.threads asks for {}), so "
            "that its curves continue bit for bit",
            position.threads, hooks.checkpointPath, asked));
      }
    }
    description.resumeStep = position.step;
    description.resumeEpoch = position.epochs;
    description.integers["resumed_from_epoch"] = position.epochs;
    if (hooks.notice) {
      hooks.notice(fmt::format("resumed from checkpoint {} after epoch {} (step {})",
                               hooks.checkpointPath, position.epochs, position.step));
    }
  }

  for (const auto& task : tasks) {
    description.tasks.push_back(task.name);
    description.metrics.push_back(metricNames(task.kind));
    description.higherIsBetter.push_back(metricDirections(task.kind));
  }
  description.splits = kSplits;
  description.timings = kTimings;
  description.diagnostics = strategy.diagnosticNames();
  const std::size_t strategyDiagnostics = description.diagnostics.size();
  const std::vector<std::string> extraNames = model.extraLossNames();
  description.diagnostics.insert(description.diagnostics.end(), extraNames.begin(),
                                 extraNames.end());
  const std::vector<torch::Tensor> modelParameters = model.parameters();
  description.gradientInterval = spec.train.logGradientsEvery;
  description.integers["log_gradients_every"] = spec.train.logGradientsEvery;
  description.integers["shared_parameters"] = context.sharedParameterCount;
  description.integers["steps_per_epoch"] = stepsPerEpoch;
  description.integers["threads"] = torch::get_num_threads();
  description.countsSkippedSteps = spec.train.onNan == "skip_step";
  log.begin(description);

  TrialResult result;
  std::vector<int64_t> order(static_cast<std::size_t>(data.train.size()));
  int64_t step = position.step;
  result.steps = step;
  result.skippedSteps = position.skippedSteps;
  std::vector<double> lastWeights = position.lastWeights;
  const bool skipNonFinite = spec.train.onNan == "skip_step";
  int64_t skippedInEpoch = 0;
  // A LibTorch warning is an error of the trial (issue 15): `phase` says where it came.
  auto failOnWarning = [&](const std::string& phase) {
    if (!hooks.pendingWarning) return;
    const std::string warning = hooks.pendingWarning();
    if (!warning.empty())
      throw TrialFailure(fmt::format("LibTorch warning {}: {}", phase, warning));
  };
  // True if the step must be skipped for `problem`; throws if it must fail.
  auto skipFor = [&](const std::string& problem) {
    if (problem.empty()) return false;
    if (!skipNonFinite) throw TrialFailure(problem);
    failOnWarning(fmt::format("at step {}", step));
    ++skippedInEpoch;
    ++result.skippedSteps;
    optimizer->zero_grad();
    if (hooks.warning)
      hooks.warning(problem + "; optimizer step skipped (train.on_nan: skip_step)");
    return true;
  };
  try {
    failOnWarning("while setting up the trial (data, model, strategy), before step 0");
    for (int64_t epoch = position.epochs; epoch < spec.train.epochs; ++epoch) {
      const auto epochStart = Clock::now();
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), shuffle);
      const torch::Tensor permutation =
          torch::from_blob(order.data(), {static_cast<int64_t>(order.size())}, torch::kInt64);
      std::vector<MetricSums> trainSums(taskCount);
      std::vector<double> lossTotals(taskCount, 0.0);
      std::vector<int64_t> lossSteps(taskCount, 0);  // steps with a label, per task
      model.train();
      for (int64_t b = 0; b < stepsPerEpoch; ++b, ++step) {
        if (hooks.stopRequested && hooks.stopRequested()) {
          throw TrialFailure(fmt::format("interrupted at step {}", step), /*interrupted=*/true);
        }
        if (hooks.stepStarting) hooks.stepStarting(epoch, b, stepsPerEpoch);
        const auto start = Clock::now();
        const int64_t first = b * batchSize;
        const torch::Tensor index =
            permutation.narrow(0, first, std::min(batchSize, data.train.size() - first));
        const torch::Tensor inputs = data.train.inputs.index_select(0, index);
        optimizer->zero_grad();
        const ModelOutput forward = model.forward({inputs});
        const std::vector<torch::Tensor>& outputs = forward.outputs;
        std::vector<torch::Tensor> targets(taskCount), losses(taskCount);
        std::vector<Labelled> labelled(taskCount);
        std::vector<bool> present;  // empty: every task has a label in this batch
        StepRecord record;
        record.step = step;
        record.epoch = epoch;
        for (std::size_t t = 0; t < taskCount; ++t) {
          targets[t] = data.train.targets[t].index_select(0, index);
          labelled[t] = labelledRows(tasks[t].kind, targets[t], data.missingLabels);
          losses[t] = maskedLoss(tasks[t].kind, outputs[t], targets[t], labelled[t]);
          record.losses.push_back(labelled[t].count > 0 ? losses[t].item<double>() : std::nan(""));
          if (labelled[t].count == 0 && present.empty()) present.assign(taskCount, true);
          if (labelled[t].count == 0) present[t] = false;
        }
        if (skipFor(nonFinite(record.losses, tasks, "loss", step, epoch, present))) continue;
        // The architecture's own losses: their gradients are taken now, while
        // the graph they share with the task losses exists, and added after
        // the strategy's update.
        std::vector<double> extraValues;
        std::vector<torch::Tensor> extraGradients;
        if (!forward.extraLosses.empty()) {
          const torch::Tensor extra = torch::stack(forward.extraLosses);
          extraValues = toDoubles(extra);
          const std::string problem = nonFiniteExtra(extraValues, extraNames, step, epoch);
          if (skipFor(problem)) continue;
          extraGradients =
              torch::autograd::grad({extra.sum()}, modelParameters, {}, /*retain_graph=*/true,
                                    /*create_graph=*/false, /*allow_unused=*/true);
        }
        const double forwardMs = millisecondsSince(start);

        auto mark = Clock::now();
        source.reset(losses, forward.features);
        StepOutput update = strategy.step(StepInput{losses, source, step, epoch, present});
        record.weights = toDoubles(update.weights);
        if (skipFor(nonFinite(record.weights, tasks, "weight", step, epoch))) continue;
        const double strategyMs = millisecondsSince(mark);

        // Gradient diagnostics read the per-task gradients before the
        // backward pass frees the graph: free for the strategies that asked
        // for them this step, T backward passes for the others.
        // A model that shares nothing (soft sharing) has no shared gradients to describe.
        const bool logGradients = spec.train.logGradientsEvery > 0 && !parameters.shared.empty() &&
                                  step % spec.train.logGradientsEvery == 0;
        GradientRecord gradientRecord;
        double gradientLogMs = 0.0;
        std::vector<torch::Tensor> sharedBefore;
        if (logGradients) {
          mark = Clock::now();
          gradientRecord.step = step;
          gradientRecord.epoch = epoch;
          gradientGeometry(source.sharedParameters(), gradientRecord);
          gradientLogMs += millisecondsSince(mark);
        }

        mark = Clock::now();
        updateTargets.losses = losses;
        updateTargets.features = forward.features;
        applyUpdate(update, updateTargets);
        if (!extraGradients.empty()) addGradients(modelParameters, extraGradients);
        const double backwardMs = millisecondsSince(mark);
        if (skipFor(nonFiniteGradient(parameters, update, tasks, step, epoch))) continue;
        if (logGradients) {
          mark = Clock::now();
          std::vector<torch::Tensor> direction;
          for (const auto& parameter : parameters.shared) {
            direction.push_back(parameter.grad());
            sharedBefore.push_back(parameter.detach().clone());
          }
          gradientRecord.directionNorm = jointNorm(direction);
          gradientLogMs += millisecondsSince(mark);
        }
        mark = Clock::now();
        optimizer->step();
        const double optimizerMs = millisecondsSince(mark);
        if (logGradients) {
          mark = Clock::now();
          std::vector<torch::Tensor> change;
          for (std::size_t k = 0; k < parameters.shared.size(); ++k) {
            change.push_back(parameters.shared[k].detach() - sharedBefore[k]);
          }
          gradientRecord.stepNorm = jointNorm(change);
          gradientLogMs += millisecondsSince(mark);
        }
        // Timed as strategy time: the pass exists only for the strategy.
        double afterStepMs = 0.0;
        if (strategy.wantsLossesAfterStep()) {
          mark = Clock::now();
          std::vector<double> lossesAfter(taskCount);
          {
            torch::NoGradGuard noGrad;
            const ModelOutput after = model.forward({inputs});
            for (std::size_t t = 0; t < taskCount; ++t) {
              lossesAfter[t] = labelled[t].count == 0 ? 0.0
                                                      : maskedLoss(tasks[t].kind, after.outputs[t],
                                                                   targets[t], labelled[t])
                                                            .item<double>();
            }
          }
          checkFinite(lossesAfter, tasks, "loss after the optimizer step", step, epoch, present);
          strategy.afterStep(lossesAfter);
          afterStepMs = millisecondsSince(mark);
        }

        {
          torch::NoGradGuard noGrad;
          for (std::size_t t = 0; t < taskCount; ++t) {
            if (labelled[t].count == 0) continue;
            trainSums[t].add(tasks[t].kind, rowsOf(outputs[t].detach(), labelled[t]),
                             rowsOf(targets[t], labelled[t]), record.losses[t]);
            lossTotals[t] += record.losses[t];
            ++lossSteps[t];
          }
        }
        record.timings = {forwardMs,     strategyMs + afterStepMs,
                          backwardMs,    optimizerMs,
                          gradientLogMs, millisecondsSince(start) - gradientLogMs};
        record.diagnostics = update.diagnostics;
        record.diagnostics.resize(strategyDiagnostics, std::nan(""));
        record.diagnostics.insert(record.diagnostics.end(), extraValues.begin(), extraValues.end());
        record.diagnostics.resize(description.diagnostics.size(), std::nan(""));
        lastWeights = record.weights;
        failOnWarning(fmt::format("at step {} (epoch {})", step, epoch + 1));
        log.step(record);
        if (logGradients) log.gradients(gradientRecord);
        result.steps = step + 1;
      }
      const double seconds = std::chrono::duration<double>(Clock::now() - epochStart).count();

      EpochStats stats;
      stats.epoch = epoch;
      if (skippedInEpoch == stepsPerEpoch) {
        throw TrialFailure(
            fmt::format("every step of epoch {} was skipped for non-finite values", epoch + 1));
      }
      for (std::size_t t = 0; t < taskCount; ++t) {
        stats.meanTrainLosses.push_back(
            lossSteps[t] > 0 ? lossTotals[t] / static_cast<double>(lossSteps[t]) : std::nan(""));
      }
      strategy.onEpochEnd(stats);

      EpochRecord epochRecord;
      epochRecord.epoch = epoch;
      epochRecord.seconds = seconds;
      epochRecord.skippedSteps = std::exchange(skippedInEpoch, 0);
      std::vector<std::vector<double>> trainValues;
      for (std::size_t t = 0; t < taskCount; ++t)
        trainValues.push_back(trainSums[t].means(tasks[t].kind));
      epochRecord.values.push_back(trainValues);
      epochRecord.values.push_back(
          evaluate(model, data.val, tasks, spec.train.evalBatchSize, data.missingLabels));
      epochRecord.values.push_back(
          evaluate(model, data.test, tasks, spec.train.evalBatchSize, data.missingLabels));
      failOnWarning(fmt::format("in the evaluation after epoch {}", epoch + 1));
      log.epoch(epochRecord);

      if (hooks.progress) {
        std::string line =
            fmt::format("epoch {:>3}/{}  {:6.1f}s ", epoch + 1, spec.train.epochs, seconds);
        for (std::size_t t = 0; t < taskCount; ++t) {
          const auto& names = description.metrics[t];
          line +=
              fmt::format(" | {} loss {:.4f} {} {:.4f}", tasks[t].name, stats.meanTrainLosses[t],
                          "test_" + names[1], epochRecord.values[2][t][1]);
        }
        line += fmt::format(" | w {:.3f}", fmt::join(lastWeights, " "));
        hooks.progress(line);
      }
      // After the epoch is in the log (log.epoch flushed it), never before:
      // a checkpoint must not be ahead of the file it continues.
      const bool last = epoch + 1 == spec.train.epochs;
      if (!checkpointPath.empty() && !last && (epoch + 1) % spec.train.checkpointEvery == 0) {
        const TrainingPosition now{
            epoch + 1,  step, result.skippedSteps, torch::get_num_threads(), generatorText(shuffle),
            lastWeights};
        saveCheckpoint(checkpointPath, config, now, model, *optimizer, strategy.state());
        failOnWarning(fmt::format("while saving the checkpoint after epoch {}", epoch + 1));
      }
    }
  } catch (const TrialFailure& failure) {
    result.status = "failed";
    result.error = failure.what();
    log.end(result.status, result.error);
    // A broken trial would fail again from its checkpoint; an interrupted one goes on from it.
    if (!failure.interrupted()) removeCheckpoint(hooks.checkpointPath);
    return result;
  } catch (const c10::Error& error) {
    endAfterError(log, error.what_without_backtrace());
    throw;
  } catch (const std::exception& error) {
    endAfterError(log, error.what());
    throw;
  }
  result.status = "completed";
  // Before the log's final write, which may need room for a copy of the file.
  removeCheckpoint(hooks.checkpointPath);
  log.end(result.status, "");
  return result;
}

}  // namespace fulcrum
