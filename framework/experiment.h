// An experiment file, loaded and validated into typed settings before
// anything runs.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/data.h"
#include "framework/schedule.h"
#include "framework/task.h"

namespace fulcrum {

/// `data:` — which dataset and its options.
struct DataSpec {
  std::string kind =
      "multi_fashion";  ///< "multi_fashion", "gradnorm_toy" or a registered kind (hdf5, csv, ...)
  MultiFashionOptions multiFashion;  ///< when kind == multi_fashion
  GradNormToyOptions gradNormToy;    ///< when kind == gradnorm_toy
  /// The `data:` mapping, read by a registered kind's hooks (framework/extension_registry.h).
  ConfigNode options{YAML::Node(), "", "data"};
};

/// `train.optimizer:`: LibTorch's own optimizers, with PyTorch's defaults.
struct OptimizerSpec {
  std::string kind = "adam";  ///< "adam", "adamw", "sgd", "rmsprop" or "adagrad"
  double lr = 1e-3;           ///< > 0
  /// >= 0, model parameters only, default 0 for every kind (adamw too, not
  /// LibTorch's 0.01); adamw's is decoupled, the others' an L2 term in the gradient.
  double weightDecay = 0.0;
  double momentum = 0.0;  ///< sgd, rmsprop: in [0, 1)
  bool nesterov = false;  ///< sgd: Nesterov momentum (needs momentum > 0)
  double beta1 = 0.9;     ///< adam, adamw: `betas: [b1, b2]`, each in [0, 1)
  double beta2 = 0.999;
  bool amsgrad = false;             ///< adam, adamw
  double eps = 1e-8;                ///< adam, adamw, rmsprop (1e-8), adagrad (1e-10): > 0
  double alpha = 0.99;              ///< rmsprop: smoothing of the squared gradients, in [0, 1)
  bool centered = false;            ///< rmsprop: divide by the centred variance
  double lrDecay = 0.0;             ///< adagrad: lr_t = lr / (1 + (t − 1) lr_decay), >= 0
  double initialAccumulator = 0.0;  ///< adagrad: the sum's initial value, >= 0
};

/// Reads and validates an `optimizer:` mapping (kind, lr, weight_decay and
/// the kind's own keys); a key of another kind, or an unknown one, is refused.
OptimizerSpec readOptimizerSpec(const ConfigNode& optimizer);

/// `train.clip:` — on the combined update of the model's parameters (after
/// the strategy, the architecture's losses and the regularisation; never a
/// strategy's own parameters), before the optimizer step.
struct ClipSpec {
  double maxNorm = 0.0;   ///< `norm:` the global 2-norm's bound (0: off)
  double maxValue = 0.0;  ///< `value:` each entry's bound |g| ≤ value (0: off)
};

/// `train.regularization:` — R = λ₁‖θ‖₁ + λ₂‖θ‖₂² added to the objective,
/// its gradient (λ₁ sign θ + 2λ₂θ) added after the strategy's combination.
struct RegularizationSpec {
  double sharedL1 = 0.0, sharedL2 = 0.0;  ///< `shared: {l1, l2}`: the shared parameters
  double tasksL1 = 0.0, tasksL2 = 0.0;    ///< `tasks: {l1, l2}`: every task's own parameters
  bool any() const { return sharedL1 > 0 || sharedL2 > 0 || tasksL1 > 0 || tasksL2 > 0; }
};

/// `train.save_model:` — the trained model's parameters, next to the result
/// file, for `fulcrum evaluate`.
struct SaveModelSpec {
  bool final = false;  ///< `final` or `both`: after the last epoch trained
  bool best = false;   ///< `best` or `both`: after each epoch that improves `criterion`
  /// best: `metric:` (default early stopping's metric, else `loss`).
  ValidationCriterion criterion;
};

/// `train:`.
struct TrainSpec {
  int64_t epochs = 10;           ///< >= 1
  int64_t batchSize = 256;       ///< >= 1
  int64_t evalBatchSize = 1024;  ///< >= 1
  int64_t maxStepsPerEpoch = 0;  ///< 0 = every batch of the training split
  int64_t threads = 0;           ///< intra-op threads; 0 = fulcrum's measured default
  /// Steps between two gradient diagnostics (per-task gradient norms and
  /// cosines, update norms; see GradientRecord); 0 = none.
  int64_t logGradientsEvery = 25;
  /// What a NaN or infinite loss, weight or gradient does: "fail" (default)
  /// ends the trial naming the task, step and quantity; "skip_step" skips
  /// that batch's optimizer step, counts and reports it, and goes on.
  std::string onNan = "fail";
  /// Epochs between two checkpoints (model, optimizer, strategy state,
  /// random generators) that `fulcrum run --resume` continues from; 0 = none.
  int64_t checkpointEvery = 1;
  OptimizerSpec optimizer;
  ScheduleSpec scheduler;  ///< the learning rate of the model's optimizer
  ClipSpec clip;
  RegularizationSpec regularization;
  EarlyStoppingSpec earlyStopping;
  SaveModelSpec saveModel;
};

/// `cross_validation:` — fold `fold` of a k-fold split of the training
/// split: the trial trains on the other folds and validates on this one
/// (the test split is left as it is). `sweep: {cross_validation: k}` runs
/// every fold.
struct CrossValidationSpec {
  int64_t folds = 0;  ///< k >= 2; 0: no cross-validation
  int64_t fold = 0;   ///< in [0, k)
  uint64_t seed = 0;  ///< seeds the assignment of rows to folds (not the trial's seed)
};

/// A whole experiment file after validation and `--set` overrides.
struct ExperimentSpec {
  std::string file;    ///< where it was read from
  std::string name;    ///< `name:`, default the file's stem
  uint64_t seed = 0;   ///< `seed:`, default 0
  std::string output;  ///< `output:` folder, default "out/<name>"
  DataSpec data;
  /// The `model:` mapping (architecture, trunk, head, ...), validated later
  /// by the model registry (models/registry.h; framework/ knows no model).
  ConfigNode model{YAML::Node(), "", "model"};
  std::vector<TaskSpec> tasks;  ///< `tasks:`, default the dataset's own
  TrainSpec train;
  CrossValidationSpec crossValidation;
  YAML::Node root;  ///< the whole tree after overrides
  /// Key paths the file lacked that `--set` overrides created.
  std::set<std::string> createdByOverrides;
  /// The `strategy:` mapping, validated later by the strategy registry
  /// (framework/ knows no strategy by name).
  ConfigNode strategy{YAML::Node(), "", "strategy"};
  std::string strategyName;            ///< `strategy.name`
  std::vector<std::string> overrides;  ///< the `--set` overrides applied, as typed
  /// The configuration as YAML text (after overrides), stored in result files.
  std::string resolvedYaml() const;
};

/// The longest file name the file systems fulcrum runs on allow (NAME_MAX of
/// ext4, xfs, btrfs, tmpfs).
inline constexpr std::size_t kFileNameMax = 255;

/// True if `key` is `path` or a key inside it ("train.optimizer.lr" is
/// inside "train"; so is "tasks[0]" inside "tasks").
bool isInsidePath(const std::string& key, const std::string& path);

/// Bytes that fulcrum may append to a result file's name (".ckpt.part-<pid>",
/// ".lock", ".log" and the like); a result name plus these must fit NAME_MAX.
inline constexpr std::size_t kFileSuffixReserve = 32;

/// Reads and validates `path`, applying `overrides` ("key.path=value", the
/// value parsed as YAML) to the tree first. Throws ConfigError naming file,
/// line, column and key path (or the override) on any problem.
ExperimentSpec loadExperiment(const std::string& path,
                              const std::vector<std::string>& overrides = {});

/// The text of the experiment file `path`; ConfigError naming the path if it
/// is missing, a directory or unreadable.
std::string readExperimentFile(const std::string& path);

/// The YAML document in `text` (null if empty); a syntax error becomes a
/// ConfigError naming `file`, line and column (and a tab in the indentation).
YAML::Node parseYaml(const std::string& text, const std::string& file);

/// As loadExperiment, from YAML text; `file` names it in messages.
ExperimentSpec parseExperiment(const std::string& text, const std::string& file,
                               const std::vector<std::string>& overrides = {});

/// A ConfigError for `keyPath` (e.g. "output", "data.directory") of `spec`,
/// located where its value was written: the `--set` override that set it,
/// else the key's line and column in the file (or its nearest enclosing
/// mapping present, when the value is a default). For problems found after
/// validation, such as an output folder that cannot be written.
ConfigError errorAtKey(const ExperimentSpec& spec, const std::string& keyPath,
                       const std::string& message);

/// `error` (found validating `spec`, e.g. by the strategy registry) located
/// against the `--set` override that wrote its key, or unchanged when the
/// key is the file's (as parseExperiment locates its own errors).
ConfigError locateInOverrides(const ExperimentSpec& spec, const ConfigError& error);

/// A model's (or a part's) size estimated before it is built, for the
/// memory check; zeros where unknown.
struct ModelSize {
  double parameters = 0;       ///< trainable parameters
  double activationWidth = 0;  ///< values computed per example in a forward pass
  int64_t width = 0;           ///< a trunk's output width (0: unknown)
  int64_t stages = 0;          ///< a trunk's stages (TrunkParts::stageEnds; 0: unknown)
};

/// Rough peak memory of a trial in bytes (data, model with gradients and
/// optimizer state, a T×P per-task gradient buffer, activations), used to
/// reject impossible sizes before anything is allocated.
struct MemoryEstimate {
  double data = 0, model = 0, activations = 0;  ///< bytes
  double parameters = 0;                        ///< model parameters
  double total() const { return data + model + activations; }
};
MemoryEstimate estimateMemory(const ExperimentSpec& spec, const ModelSize& model);

/// ConfigError, located at the part that needs the most (data, batch size,
/// the model's widths), if the trial cannot fit in this machine's memory.
/// loadExperiment checks the data alone; the model registry again with the
/// model's size.
void checkMemory(const ExperimentSpec& spec, const ModelSize& model);

/// One example's input shape of a built-in dataset ({1, 36, 36}, {input_dim});
/// empty for a registered kind, whose shape is known once it is loaded.
std::vector<int64_t> knownInputShape(const DataSpec& data);

/// The tasks a built-in dataset defines, known without loading it (empty for
/// a registered kind: its tasks come from its `tasks` hook).
std::vector<TaskSpec> datasetTasks(const DataSpec& data);

/// The context a registered dataset's hooks get for `spec`.
struct DatasetContext;
DatasetContext datasetContext(const ExperimentSpec& spec);

/// Loads or generates the dataset (seeded by the experiment's seed), then
/// makes its targets agree with the tasks (conformTargets) and checks its
/// shapes (checkSplitShapes) before anything trains: a mismatch is a
/// ConfigError at `data.targets.TASK`, `data.inputs` or `data`.
MultiTaskData loadData(const ExperimentSpec& spec);

}  // namespace fulcrum
