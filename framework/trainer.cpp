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
#include "framework/gradient_diagnostics.h"
#include "framework/gradients.h"
#include "framework/model.h"
#include "framework/schedule.h"
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

/// The task's loss on rows that are all labelled. Refuses targets that do
/// not fit the head's outputs: LibTorch's losses would broadcast an N target
/// against N × 1 outputs into N × N.
torch::Tensor taskLoss(TaskKind kind, const torch::Tensor& outputs, const torch::Tensor& targets) {
  const TaskKindInfo& info = taskKindInfo(kind);
  if (!info.fits(outputs, targets)) {
    throw std::invalid_argument(fmt::format("{} loss: targets are {} for outputs {} (expected {})",
                                            info.name, shapeText(targets), shapeText(outputs),
                                            info.targetShape));
  }
  return info.lossOf(outputs, targets);
}

/// The rows of a batch that carry a task's label (data with missing labels).
struct Labelled {
  torch::Tensor rows;  ///< indices of the labelled rows; undefined when every row is labelled
  int64_t count = 0;   ///< how many rows are labelled
};

Labelled labelledRows(TaskKind kind, const torch::Tensor& targets, bool masking) {
  if (!masking) return {torch::Tensor(), targets.size(0)};
  const torch::Tensor known = taskKindInfo(kind).known(targets);
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

/// Sums of a task's metrics over labelled examples (the loss weighted by
/// rows, then the kind's own sums), turned into means by `means()`.
struct MetricSums {
  double loss = 0.0;
  int64_t examples = 0;
  int64_t width = 0;  ///< the head's outputs
  std::vector<double> sums;

  void add(TaskKind kind, const torch::Tensor& outputs, const torch::Tensor& targets,
           double meanLoss) {
    const TaskKindInfo& info = taskKindInfo(kind);
    const int64_t n = outputs.size(0);
    loss += meanLoss * static_cast<double>(n);
    examples += n;
    width = outputs.size(1);
    sums.resize(info.sumCount(width), 0.0);
    info.addMetrics(outputs, targets, sums.data());
  }

  std::vector<double> means(TaskKind kind) const {
    if (examples == 0)
      return std::vector<double>(metricNames(kind).size(), std::nan(""));  // no labelled row
    std::vector<double> values = {loss / static_cast<double>(examples)};
    const std::vector<double> own = taskKindInfo(kind).metricsOf(sums.data(), examples, width);
    values.insert(values.end(), own.begin(), own.end());
    return values;
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

std::vector<std::vector<double>> evaluateSplit(MultiTaskModel& model, const Split& split,
                                               const std::vector<TaskSpec>& tasks,
                                               int64_t batchSize, bool masking) {
  return evaluate(model, split, tasks, batchSize, masking);
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

namespace {

/// The optimizer `Kind` with `options` for the model's parameters and the
/// same without weight decay for the strategy's own.
template <typename Kind, typename Options>
std::unique_ptr<torch::optim::Optimizer> withGroups(const Options& options,
                                                    std::vector<torch::Tensor> model,
                                                    std::vector<torch::Tensor> strategy) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::move(model), std::make_unique<Options>(options));
  if (!strategy.empty())
    groups.emplace_back(std::move(strategy),
                        std::make_unique<Options>(Options(options).weight_decay(0)));
  return std::make_unique<Kind>(std::move(groups), options);
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> makeOptimizer(const OptimizerSpec& spec,
                                                       std::vector<torch::Tensor> model,
                                                       std::vector<torch::Tensor> strategy) {
  using namespace torch::optim;
  if (spec.kind == "sgd") {
    return withGroups<SGD>(SGDOptions(spec.lr)
                               .momentum(spec.momentum)
                               .nesterov(spec.nesterov)
                               .weight_decay(spec.weightDecay),
                           std::move(model), std::move(strategy));
  }
  if (spec.kind == "adamw") {
    return withGroups<AdamW>(AdamWOptions(spec.lr)
                                 .betas({spec.beta1, spec.beta2})
                                 .eps(spec.eps)
                                 .amsgrad(spec.amsgrad)
                                 .weight_decay(spec.weightDecay),
                             std::move(model), std::move(strategy));
  }
  if (spec.kind == "rmsprop") {
    return withGroups<RMSprop>(RMSpropOptions(spec.lr)
                                   .alpha(spec.alpha)
                                   .eps(spec.eps)
                                   .momentum(spec.momentum)
                                   .centered(spec.centered)
                                   .weight_decay(spec.weightDecay),
                               std::move(model), std::move(strategy));
  }
  if (spec.kind == "adagrad") {
    return withGroups<Adagrad>(AdagradOptions(spec.lr)
                                   .lr_decay(spec.lrDecay)
                                   .initial_accumulator_value(spec.initialAccumulator)
                                   .eps(spec.eps)
                                   .weight_decay(spec.weightDecay),
                               std::move(model), std::move(strategy));
  }
  if (spec.kind != "adam")
    throw std::invalid_argument("makeOptimizer: unknown optimizer kind '" + spec.kind + "'");
  return withGroups<Adam>(AdamOptions(spec.lr)
                              .betas({spec.beta1, spec.beta2})
                              .eps(spec.eps)
                              .amsgrad(spec.amsgrad)
                              .weight_decay(spec.weightDecay),
                          std::move(model), std::move(strategy));
}

namespace {

/// One step's rows: their inputs, and each task's targets and labelled rows.
struct Batch {
  torch::Tensor inputs;
  std::vector<torch::Tensor> targets;
  std::vector<Labelled> labelled;
};

/// A step's task losses (each with its graph), their values (NaN where a
/// task has no label in the batch) and which tasks have one (empty: all).
struct TaskLosses {
  std::vector<torch::Tensor> tensors;
  std::vector<double> values;
  std::vector<bool> present;
};

/// The architecture's own losses of a step: their values and gradients
/// (one per model parameter), taken while the step's graph exists.
struct ExtraLosses {
  std::vector<double> values;
  std::vector<torch::Tensor> gradients;  ///< none when `problem` is set
  std::string problem;                   ///< a value that is not finite, or ""
};

/// The training-split sums of one epoch.
struct EpochSums {
  std::vector<MetricSums> metrics;
  std::vector<double> lossTotals;
  std::vector<int64_t> lossSteps;  ///< steps with a label, per task
  explicit EpochSums(std::size_t tasks)
      : metrics(tasks), lossTotals(tasks, 0.0), lossSteps(tasks, 0) {}
};

/// One trial's training: what lives from step to step and epoch to epoch.
class Trainer {
 public:
  Trainer(const ExperimentSpec& spec, const MultiTaskData& data, MultiTaskModel& model,
          Strategy& strategy, RunLog& log, const TrainHooks& hooks);
  TrialResult run(TrialDescription description);

 private:
  void resumeFromCheckpoint(TrialDescription& description);
  void describe(TrialDescription& description) const;
  void runEpoch(int64_t epoch);
  Batch batchAt(const torch::Tensor& permutation, int64_t b) const;
  bool step(int64_t epoch, const Batch& batch);
  TaskLosses taskLosses(const ModelOutput& forward, const Batch& batch) const;
  ExtraLosses extraLosses(const ModelOutput& forward, int64_t epoch);
  double lossesAfterStep(const Batch& batch, int64_t epoch);
  void addToEpoch(const ModelOutput& forward, const Batch& batch, const TaskLosses& losses);
  void endEpoch(int64_t epoch, double seconds);
  bool skipFor(const std::string& problem);
  void failOnWarning(const std::string& phase) const;
  void setRate(int64_t epoch);
  double regularize();
  void clip(std::vector<double>& diagnostics);

  const ExperimentSpec& spec_;
  const MultiTaskData& data_;
  MultiTaskModel& model_;
  Strategy& strategy_;
  RunLog& log_;
  const TrainHooks& hooks_;
  const std::vector<TaskSpec>& tasks_;
  int64_t stepsPerEpoch_ = 0;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<ParameterLists> parameters_;
  std::vector<torch::Tensor> modelParameters_;
  std::unique_ptr<AutogradGradientSource> source_;
  UpdateTargets updateTargets_;
  std::unique_ptr<GradientDiagnostics> gradients_;
  std::string checkpointPath_;  ///< empty: no checkpoints
  std::string config_;          ///< canonical configuration, checked on resume
  std::vector<std::string> extraNames_;
  /// The trainer's own step diagnostics: lr, then regularization and the
  /// clipping's when configured.
  std::vector<std::string> protocolNames_;
  std::size_t strategyDiagnostics_ = 0, diagnosticCount_ = 0;
  std::unique_ptr<LearningRateSchedule> schedule_;
  std::unique_ptr<EarlyStopping> earlyStopping_;
  double rate_ = std::nan("");       ///< the rate the optimizer's groups have (NaN: not set yet)
  double savedBest_ = std::nan("");  ///< train.save_model best: the value saved (NaN: none)
  std::string stopReason_;           ///< why early stopping ended the trial; "" while it trains
  int64_t stoppedAfter_ = 0;         ///< epochs trained when early stopping ended the trial
  bool paused_ = false;              ///< TrainHooks::pauseAfterEpoch reached

  TrainingPosition position_;  ///< where the trial starts (a checkpoint's)
  std::mt19937_64 shuffle_;
  std::vector<int64_t> order_;
  int64_t step_ = 0;
  int64_t skippedInEpoch_ = 0;
  std::vector<double> lastWeights_;
  std::unique_ptr<EpochSums> epochSums_;
  TrialResult result_;
};

Trainer::Trainer(const ExperimentSpec& spec, const MultiTaskData& data, MultiTaskModel& model,
                 Strategy& strategy, RunLog& log, const TrainHooks& hooks)
    : spec_(spec),
      data_(data),
      model_(model),
      strategy_(strategy),
      log_(log),
      hooks_(hooks),
      tasks_(spec.tasks),
      shuffle_(spec.seed * 0x9E3779B97F4A7C15ULL + 1) {
  TORCH_CHECK(data.train.targets.size() == tasks_.size(), "data has ", data.train.targets.size(),
              " targets for ", tasks_.size(), " tasks");
  configureThreads(spec.train.threads);
  configureAllocator();
  TORCH_CHECK(model.taskCount() == tasks_.size(), "a model of ", model.taskCount(), " tasks for ",
              tasks_.size(), " tasks");
  const int64_t batchSize = spec.train.batchSize;
  stepsPerEpoch_ = (data.train.size() + batchSize - 1) / batchSize;
  if (spec.train.maxStepsPerEpoch > 0)
    stepsPerEpoch_ = std::min(stepsPerEpoch_, spec.train.maxStepsPerEpoch);

  StrategyContext context;
  context.tasks = tasks_;
  context.sharedParameterCount = countElements(model.sharedParameters());
  context.lastSharedLayerParameterCount = countElements(model.lastSharedLayer());
  context.stepsPerEpoch = stepsPerEpoch_;
  context.seed = spec.seed;
  strategy.attach(context);
  optimizer_ = makeOptimizer(spec.train.optimizer, model.parameters(), strategy.parameters());
  parameters_ = std::make_unique<ParameterLists>(model, strategy, tasks_.size());
  modelParameters_ = model.parameters();
  source_ = std::make_unique<AutogradGradientSource>(parameters_->shared, model.lastSharedLayer());
  updateTargets_.shared = parameters_->shared;
  updateTargets_.taskSpecific = parameters_->allTaskSpecific;
  gradients_ =
      std::make_unique<GradientDiagnostics>(spec.train.logGradientsEvery, parameters_->shared);
  checkpointPath_ = spec.train.checkpointEvery > 0 ? hooks.checkpointPath : "";
  config_ = canonicalConfig(spec.root);
  extraNames_ = model.extraLossNames();
  order_.resize(static_cast<std::size_t>(data.train.size()));
  schedule_ = std::make_unique<LearningRateSchedule>(spec.train.scheduler, spec.train.optimizer.lr,
                                                     spec.train.epochs, stepsPerEpoch_);
  earlyStopping_ = std::make_unique<EarlyStopping>(spec.train.earlyStopping);
  protocolNames_ = {"lr"};
  if (spec.train.regularization.any()) protocolNames_.push_back("regularization");
  if (spec.train.clip.maxNorm > 0) protocolNames_.push_back("clip_norm");
  if (spec.train.clip.maxNorm > 0 || spec.train.clip.maxValue > 0)
    protocolNames_.push_back("clip_fraction");
}

/// Where training starts: step 0, or the end of the checkpointed epoch of
/// an interrupted run (read before anything is logged, so that a checkpoint
/// that cannot be used changes no file).
void Trainer::resumeFromCheckpoint(TrialDescription& description) {
  const std::string& path = hooks_.checkpointPath;
  if (!hooks_.resume || path.empty() || !std::filesystem::exists(path)) return;
  LoadedCheckpoint loaded = loadCheckpoint(path, config_, model_, *optimizer_);
  position_ = std::move(loaded.position);
  if (position_.epochs < 1 || position_.epochs >= spec_.train.epochs ||
      position_.step != position_.epochs * stepsPerEpoch_) {
    throw CheckpointError(fmt::format(
        "checkpoint '{}' is at epoch {}, step {}: not a point of this trial ({} epochs of {} "
        "steps)",
        path, position_.epochs, position_.step, spec_.train.epochs, stepsPerEpoch_));
  }
  try {
    strategy_.loadState(loaded.strategy);
  } catch (const std::exception& e) {
    throw CheckpointError(fmt::format("checkpoint '{}': {}", path, e.what()));
  }
  std::istringstream(position_.shuffle) >> shuffle_;
  // Another thread count splits the reductions differently, and the curves
  // would not continue bit for bit: the trial keeps the checkpoint's count.
  if (position_.threads > 0 && position_.threads != torch::get_num_threads()) {
    const int64_t asked = torch::get_num_threads();
    configureThreads(position_.threads);
    if (hooks_.notice) {
      hooks_.notice(fmt::format(
          "continues with the {} thread(s) of checkpoint {} (train.threads asks for {}), so "
          "that its curves continue bit for bit",
          position_.threads, path, asked));
    }
  }
  description.resumeStep = position_.step;
  description.resumeEpoch = position_.epochs;
  description.integers["resumed_from_epoch"] = position_.epochs;
  if (hooks_.notice) {
    hooks_.notice(fmt::format("resumed from checkpoint {} after epoch {} (step {})", path,
                              position_.epochs, position_.step));
  }
}

void Trainer::describe(TrialDescription& description) const {
  for (const auto& task : tasks_) {
    description.tasks.push_back(task.name);
    description.metrics.push_back(metricNames(task.kind));
    description.higherIsBetter.push_back(metricDirections(task.kind));
  }
  description.splits = kSplits;
  description.timings = kTimings;
  description.diagnostics = strategy_.diagnosticNames();
  description.diagnostics.insert(description.diagnostics.end(), extraNames_.begin(),
                                 extraNames_.end());
  description.diagnostics.insert(description.diagnostics.end(), protocolNames_.begin(),
                                 protocolNames_.end());
  description.gradientInterval = spec_.train.logGradientsEvery;
  description.integers["log_gradients_every"] = spec_.train.logGradientsEvery;
  description.integers["shared_parameters"] = countElements(parameters_->shared);
  description.integers["steps_per_epoch"] = stepsPerEpoch_;
  description.integers["threads"] = torch::get_num_threads();
  description.countsSkippedSteps = spec_.train.onNan == "skip_step";
}

TrialResult Trainer::run(TrialDescription description) {
  resumeFromCheckpoint(description);
  describe(description);
  strategyDiagnostics_ = strategy_.diagnosticNames().size();
  diagnosticCount_ = description.diagnostics.size();
  log_.begin(description);

  step_ = position_.step;
  result_.steps = step_;
  result_.skippedSteps = position_.skippedSteps;
  lastWeights_ = position_.lastWeights;
  schedule_->restore(position_.plateau);
  earlyStopping_->restore(position_.stopping);
  savedBest_ = position_.savedBest;
  paused_ = hooks_.pauseAfterEpoch > 0 && hooks_.pauseAfterEpoch <= position_.epochs;
  try {
    failOnWarning("while setting up the trial (data, model, strategy), before step 0");
    for (int64_t epoch = position_.epochs;
         epoch < spec_.train.epochs && stopReason_.empty() && !paused_; ++epoch)
      runEpoch(epoch);
    if (paused_) {
      // The checkpoint stays: a resume continues from it.
      result_.status = "paused";
      result_.error =
          fmt::format("paused after epoch {} of {}",
                      std::max(position_.epochs, hooks_.pauseAfterEpoch), spec_.train.epochs);
      log_.end(result_.status, result_.error);
      return result_;
    }
    if (spec_.train.saveModel.final && !hooks_.modelPath.empty()) {
      const int64_t epochs = stopReason_.empty() ? spec_.train.epochs : stoppedAfter_;
      saveModel(hooks_.modelPath + ".final.pt",
                {spec_.resolvedYaml(), "final", epochs, "", std::nan("")}, model_);
      failOnWarning("while saving the final model");
    }
  } catch (const TrialFailure& failure) {
    result_.status = "failed";
    result_.error = failure.what();
    log_.end(result_.status, result_.error);
    // A broken trial would fail again from its checkpoint; an interrupted one goes on from it.
    if (!failure.interrupted()) removeCheckpoint(hooks_.checkpointPath);
    return result_;
  } catch (const c10::Error& error) {
    endAfterError(log_, error.what_without_backtrace());
    throw;
  } catch (const std::exception& error) {
    endAfterError(log_, error.what());
    throw;
  }
  result_.status = "completed";
  if (!stopReason_.empty()) log_.stoppedEarly(stoppedAfter_, stopReason_);
  // Before the log's final write, which may need room for a copy of the file.
  removeCheckpoint(hooks_.checkpointPath);
  log_.end(result_.status, "");
  return result_;
}

void Trainer::runEpoch(int64_t epoch) {
  const auto epochStart = Clock::now();
  std::iota(order_.begin(), order_.end(), 0);
  std::shuffle(order_.begin(), order_.end(), shuffle_);
  const torch::Tensor permutation =
      torch::from_blob(order_.data(), {static_cast<int64_t>(order_.size())}, torch::kInt64);
  epochSums_ = std::make_unique<EpochSums>(tasks_.size());
  model_.beginEpoch(epoch, spec_.train.epochs);
  model_.train();
  for (int64_t b = 0; b < stepsPerEpoch_; ++b, ++step_) {
    if (hooks_.stopRequested && hooks_.stopRequested())
      throw TrialFailure(fmt::format("interrupted at step {}", step_), /*interrupted=*/true);
    if (hooks_.stepStarting) hooks_.stepStarting(epoch, b, stepsPerEpoch_);
    if (step(epoch, batchAt(permutation, b))) result_.steps = step_ + 1;
  }
  endEpoch(epoch, std::chrono::duration<double>(Clock::now() - epochStart).count());
}

Batch Trainer::batchAt(const torch::Tensor& permutation, int64_t b) const {
  const int64_t batchSize = spec_.train.batchSize;
  const int64_t first = b * batchSize;
  const torch::Tensor index =
      permutation.narrow(0, first, std::min(batchSize, data_.train.size() - first));
  Split rows = data_.train.rows(index);
  Batch batch;
  batch.inputs = std::move(rows.inputs);
  batch.targets = std::move(rows.targets);
  for (std::size_t t = 0; t < tasks_.size(); ++t)
    batch.labelled.push_back(labelledRows(tasks_[t].kind, batch.targets[t], data_.missingLabels));
  return batch;
}

/// One optimisation step on `batch`: forward, the strategy's update, its
/// backward pass, the optimizer. False if it was skipped (train.on_nan:
/// skip_step); a non-finite value otherwise ends the trial.
bool Trainer::step(int64_t epoch, const Batch& batch) {
  const auto start = Clock::now();
  StepRecord record;
  record.step = step_;
  record.epoch = epoch;
  setRate(epoch);
  optimizer_->zero_grad();
  const ModelOutput forward = model_.forward({batch.inputs});
  const TaskLosses losses = taskLosses(forward, batch);
  record.losses = losses.values;
  if (skipFor(nonFinite(record.losses, tasks_, "loss", step_, epoch, losses.present))) return false;
  const ExtraLosses extra = extraLosses(forward, epoch);
  if (skipFor(extra.problem)) return false;
  const double forwardMs = millisecondsSince(start);

  auto mark = Clock::now();
  source_->reset(losses.tensors, forward.features);
  const StepOutput update =
      strategy_.step(StepInput{losses.tensors, *source_, step_, epoch, losses.present});
  record.weights = toDoubles(update.weights);
  if (skipFor(nonFinite(record.weights, tasks_, "weight", step_, epoch))) return false;
  const double strategyMs = millisecondsSince(mark);

  const bool observed = gradients_->due(step_);
  if (observed) gradients_->beforeUpdate(step_, epoch, *source_);
  mark = Clock::now();
  updateTargets_.losses = losses.tensors;
  updateTargets_.features = forward.features;
  applyUpdate(update, updateTargets_);
  if (!extra.gradients.empty()) addGradients(modelParameters_, extra.gradients);
  const double backwardMs = millisecondsSince(mark);
  std::vector<double> protocol = {rate_};
  if (spec_.train.regularization.any()) protocol.push_back(regularize());
  if (skipFor(nonFiniteGradient(*parameters_, update, tasks_, step_, epoch))) return false;
  clip(protocol);
  if (observed) gradients_->afterBackward();
  mark = Clock::now();
  optimizer_->step();
  const double optimizerMs = millisecondsSince(mark);
  if (observed) gradients_->afterOptimizerStep();
  const double afterStepMs = lossesAfterStep(batch, epoch);  // the strategy's own pass
  addToEpoch(forward, batch, losses);

  const double gradientLogMs = observed ? gradients_->milliseconds() : 0.0;
  record.timings = {forwardMs,     strategyMs + afterStepMs,
                    backwardMs,    optimizerMs,
                    gradientLogMs, millisecondsSince(start) - gradientLogMs};
  record.diagnostics = update.diagnostics;
  record.diagnostics.resize(strategyDiagnostics_, std::nan(""));
  record.diagnostics.insert(record.diagnostics.end(), extra.values.begin(), extra.values.end());
  record.diagnostics.resize(diagnosticCount_ - protocolNames_.size(), std::nan(""));
  record.diagnostics.insert(record.diagnostics.end(), protocol.begin(), protocol.end());
  lastWeights_ = record.weights;
  failOnWarning(fmt::format("at step {} (epoch {})", step_, epoch + 1));
  log_.step(record);
  if (observed) log_.gradients(gradients_->record());
  return true;
}

TaskLosses Trainer::taskLosses(const ModelOutput& forward, const Batch& batch) const {
  TaskLosses losses;
  for (std::size_t t = 0; t < tasks_.size(); ++t) {
    const Labelled& labelled = batch.labelled[t];
    losses.tensors.push_back(
        maskedLoss(tasks_[t].kind, forward.outputs[t], batch.targets[t], labelled));
    losses.values.push_back(labelled.count > 0 ? losses.tensors.back().item<double>()
                                               : std::nan(""));
    if (labelled.count == 0 && losses.present.empty()) losses.present.assign(tasks_.size(), true);
    if (labelled.count == 0) losses.present[t] = false;
  }
  return losses;
}

ExtraLosses Trainer::extraLosses(const ModelOutput& forward, int64_t epoch) {
  ExtraLosses extra;
  if (forward.extraLosses.empty()) return extra;
  const torch::Tensor stacked = torch::stack(forward.extraLosses);
  extra.values = toDoubles(stacked);
  extra.problem = nonFiniteExtra(extra.values, extraNames_, step_, epoch);
  if (!extra.problem.empty()) return extra;
  extra.gradients =
      torch::autograd::grad({stacked.sum()}, modelParameters_, {}, /*retain_graph=*/true,
                            /*create_graph=*/false, /*allow_unused=*/true);
  return extra;
}

/// For a strategy that measures the losses after its step (FAMO): a forward
/// pass without gradients on the same batch. Returns its time (ms), 0 if none.
double Trainer::lossesAfterStep(const Batch& batch, int64_t epoch) {
  if (!strategy_.wantsLossesAfterStep()) return 0.0;
  const auto start = Clock::now();
  std::vector<double> after(tasks_.size());
  {
    torch::NoGradGuard noGrad;
    const ModelOutput forward = model_.forward({batch.inputs});
    for (std::size_t t = 0; t < tasks_.size(); ++t) {
      const Labelled& labelled = batch.labelled[t];
      after[t] = labelled.count == 0
                     ? 0.0
                     : maskedLoss(tasks_[t].kind, forward.outputs[t], batch.targets[t], labelled)
                           .item<double>();
    }
  }
  std::vector<bool> present;
  for (const auto& labelled : batch.labelled) present.push_back(labelled.count > 0);
  checkFinite(after, tasks_, "loss after the optimizer step", step_, epoch, present);
  strategy_.afterStep(after);
  return millisecondsSince(start);
}

void Trainer::addToEpoch(const ModelOutput& forward, const Batch& batch, const TaskLosses& losses) {
  torch::NoGradGuard noGrad;
  EpochSums& sums = *epochSums_;
  for (std::size_t t = 0; t < tasks_.size(); ++t) {
    const Labelled& labelled = batch.labelled[t];
    if (labelled.count == 0) continue;
    sums.metrics[t].add(tasks_[t].kind, rowsOf(forward.outputs[t].detach(), labelled),
                        rowsOf(batch.targets[t], labelled), losses.values[t]);
    sums.lossTotals[t] += losses.values[t];
    ++sums.lossSteps[t];
  }
}

/// The epoch's evaluation, the strategy's end of epoch, progress and the checkpoint.
void Trainer::endEpoch(int64_t epoch, double seconds) {
  if (skippedInEpoch_ == stepsPerEpoch_) {
    throw TrialFailure(
        fmt::format("every step of epoch {} was skipped for non-finite values", epoch + 1));
  }
  const EpochSums& sums = *epochSums_;
  EpochStats stats;
  stats.epoch = epoch;
  for (std::size_t t = 0; t < tasks_.size(); ++t) {
    stats.meanTrainLosses.push_back(
        sums.lossSteps[t] > 0 ? sums.lossTotals[t] / static_cast<double>(sums.lossSteps[t])
                              : std::nan(""));
  }
  strategy_.onEpochEnd(stats);

  EpochRecord record;
  record.epoch = epoch;
  record.seconds = seconds;
  record.skippedSteps = std::exchange(skippedInEpoch_, 0);
  std::vector<std::vector<double>> trainValues;
  for (std::size_t t = 0; t < tasks_.size(); ++t)
    trainValues.push_back(sums.metrics[t].means(tasks_[t].kind));
  record.values.push_back(trainValues);
  const int64_t evalBatch = spec_.train.evalBatchSize;
  record.values.push_back(evaluate(model_, data_.val, tasks_, evalBatch, data_.missingLabels));
  record.values.push_back(evaluate(model_, data_.test, tasks_, evalBatch, data_.missingLabels));
  failOnWarning(fmt::format("in the evaluation after epoch {}", epoch + 1));
  log_.epoch(record);
  schedule_->endEpoch(epoch, record.values[1]);
  stopReason_ = earlyStopping_->endEpoch(epoch, record.values[1]);
  if (epoch + 1 == spec_.train.epochs) stopReason_.clear();  // it ends here anyway
  if (!stopReason_.empty()) stoppedAfter_ = epoch + 1;
  const SaveModelSpec& save = spec_.train.saveModel;
  if (save.best && !hooks_.modelPath.empty()) {
    const double value = save.criterion.valueIn(record.values[1]);
    if (improves(value, savedBest_, save.criterion.higherIsBetter, 0.0, /*relative=*/false)) {
      saveModel(hooks_.modelPath + ".best.pt",
                {spec_.resolvedYaml(), "best", epoch + 1, save.criterion.name, value}, model_);
      savedBest_ = value;
      failOnWarning(fmt::format("while saving the best model after epoch {}", epoch + 1));
    }
  }

  if (hooks_.progress) {
    std::string line =
        fmt::format("epoch {:>3}/{}  {:6.1f}s ", epoch + 1, spec_.train.epochs, seconds);
    for (std::size_t t = 0; t < tasks_.size(); ++t) {
      line += fmt::format(" | {} loss {:.4f} {} {:.4f}", tasks_[t].name, stats.meanTrainLosses[t],
                          "test_" + metricNames(tasks_[t].kind)[1], record.values[2][t][1]);
    }
    line += fmt::format(" | w {:.3f}", fmt::join(lastWeights_, " "));
    if (spec_.train.scheduler.kind != "constant") line += fmt::format(" | lr {:.3g}", rate_);
    hooks_.progress(line);
  }
  if (!stopReason_.empty() && hooks_.notice)
    hooks_.notice(fmt::format("stopped early after epoch {}: {}", epoch + 1, stopReason_));
  // After the epoch is in the log (log.epoch flushed it), never before:
  // a checkpoint must not be ahead of the file it continues.
  const bool last = epoch + 1 == spec_.train.epochs || !stopReason_.empty();
  paused_ = !last && epoch + 1 == hooks_.pauseAfterEpoch;
  if (paused_ && hooks_.checkpointPath.empty())
    throw std::logic_error("TrainHooks::pauseAfterEpoch needs a checkpointPath");
  const std::string& checkpointPath = paused_ ? hooks_.checkpointPath : checkpointPath_;
  if (!checkpointPath.empty() && !last &&
      (paused_ || (epoch + 1) % spec_.train.checkpointEvery == 0)) {
    const TrainingPosition now{epoch + 1,
                               step_,
                               result_.skippedSteps,
                               torch::get_num_threads(),
                               generatorText(shuffle_),
                               lastWeights_,
                               schedule_->state(),
                               earlyStopping_->state(),
                               savedBest_};
    saveCheckpoint(checkpointPath, config_, now, model_, *optimizer_, strategy_.state());
    failOnWarning(fmt::format("while saving the checkpoint after epoch {}", epoch + 1));
  }
}

/// True if the step must be skipped for `problem` (train.on_nan: skip_step);
/// throws if it must fail; false if there is no problem.
bool Trainer::skipFor(const std::string& problem) {
  if (problem.empty()) return false;
  if (spec_.train.onNan != "skip_step") throw TrialFailure(problem);
  failOnWarning(fmt::format("at step {}", step_));
  ++skippedInEpoch_;
  ++result_.skippedSteps;
  optimizer_->zero_grad();
  if (hooks_.warning)
    hooks_.warning(problem + "; optimizer step skipped (train.on_nan: skip_step)");
  return true;
}

/// Gives every group of the optimizer the schedule's rate for this step
/// (strategies' own optimizers keep theirs).
void Trainer::setRate(int64_t epoch) {
  const double rate = schedule_->rate(epoch, step_);
  if (rate == rate_) return;
  for (auto& group : optimizer_->param_groups()) group.options().set_lr(rate);
  rate_ = rate;
}

/// Adds the gradient of train.regularization's R(θ) to the parameters'
/// gradients; returns R(θ).
double Trainer::regularize() {
  torch::NoGradGuard noGrad;
  const RegularizationSpec& r = spec_.train.regularization;
  torch::Tensor total = torch::zeros({}, torch::kFloat64);
  auto add = [&](const std::vector<torch::Tensor>& parameters, double l1, double l2) {
    if (l1 == 0.0 && l2 == 0.0) return;
    for (const auto& p : parameters) {
      torch::Tensor gradient = torch::zeros_like(p);
      if (l1 > 0.0) {
        total += p.abs().sum().to(torch::kFloat64) * l1;
        gradient.add_(p.sign(), l1);
      }
      if (l2 > 0.0) {
        total += p.square().sum().to(torch::kFloat64) * l2;
        gradient.add_(p, 2.0 * l2);
      }
      if (p.grad().defined())
        p.mutable_grad().add_(gradient);
      else
        p.mutable_grad() = gradient;
    }
  };
  add(parameters_->shared, r.sharedL1, r.sharedL2);
  add(parameters_->allTaskSpecific, r.tasksL1, r.tasksL2);
  return total.item<double>();
}

/// train.clip on the model parameters' gradients; appends the pre-clip
/// norm (by norm) and the clipped fraction (by norm: 1 if the step was
/// clipped; by value: the share of entries clipped) to `diagnostics`.
void Trainer::clip(std::vector<double>& diagnostics) {
  const ClipSpec& clip = spec_.train.clip;
  if (clip.maxNorm > 0.0) {
    const double norm = torch::nn::utils::clip_grad_norm_(modelParameters_, clip.maxNorm);
    diagnostics.push_back(norm);
    diagnostics.push_back(norm > clip.maxNorm ? 1.0 : 0.0);
  } else if (clip.maxValue > 0.0) {
    torch::NoGradGuard noGrad;
    torch::Tensor clipped = torch::zeros({}, torch::kFloat64);
    int64_t entries = 0;
    for (const auto& p : modelParameters_) {
      if (!p.grad().defined()) continue;
      clipped += p.grad().abs().gt(clip.maxValue).sum();
      entries += p.numel();
    }
    diagnostics.push_back(entries > 0 ? clipped.item<double>() / static_cast<double>(entries)
                                      : 0.0);
    torch::nn::utils::clip_grad_value_(modelParameters_, clip.maxValue);
  }
}

/// A LibTorch warning is an error of the trial (issue 15): `phase` says where it came.
void Trainer::failOnWarning(const std::string& phase) const {
  if (!hooks_.pendingWarning) return;
  const std::string warning = hooks_.pendingWarning();
  if (!warning.empty()) throw TrialFailure(fmt::format("LibTorch warning {}: {}", phase, warning));
}

}  // namespace

TrialResult train(const ExperimentSpec& spec, const MultiTaskData& data, MultiTaskModel& model,
                  Strategy& strategy, RunLog& log, TrialDescription description,
                  const TrainHooks& hooks) {
  return Trainer(spec, data, model, strategy, log, hooks).run(std::move(description));
}

}  // namespace fulcrum
