// The tables of architectures, trunks (backbones) and heads, in
// models/registry.cpp. Built-in rows and a program's own rows (registered
// from main() before fulcrum::cliMain) are read alike: `model.architecture`,
// `model.trunk.kind` and `model.head.kind` name a row.
#pragma once

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/experiment.h"
#include "framework/model.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum {

/// Widths and depths beyond this are typing errors, not models.
inline constexpr int64_t kMaxModelWidth = 1'000'000;

/// A trunk a builder made: the layers (input batch → B × width, or
/// B × width × H' × W' feature maps for a spatial trunk), optionally
/// the linear layer whose parameters are its "last shared layer" (GradNorm's
/// W; inside `layers`; null if the trunk has none), and the width of its output.
struct TrunkParts {
  torch::nn::Sequential layers{nullptr};
  torch::nn::Linear lastLinear{nullptr};
  /// A spatial trunk's last shared layer (its last convolution), weight then
  /// bias, in place of lastLinear.
  std::vector<torch::Tensor> lastLayer;
  int64_t width = 0;
  /// Where the trunk's stages end: indices into `layers` after which
  /// architectures that act between stages (cross-stitch) may act; empty:
  /// one stage, the whole trunk.
  std::vector<std::size_t> stageEnds;
};

/// One `model.trunk.kind`: a backbone that maps one input batch to B × width
/// (or, spatial, to B × width × H' × W' maps).
struct TrunkInfo {
  std::string name;         ///< as written in `model.trunk.kind`
  std::string description;  ///< one line
  /// Yields feature maps for spatial heads (dense tasks); only hard sharing
  /// takes such a trunk.
  bool spatial = false;
  /// Validates the options (the `model.trunk:` mapping) before anything
  /// runs, reading every key it knows; `inputShape` is one example's shape,
  /// empty when the data must be loaded to know it. Throws ConfigError. May be empty.
  std::function<void(const ConfigNode& options, const std::vector<int64_t>& inputShape)> check;
  /// Builds the trunk for inputs of one example's shape `inputShape`.
  std::function<TrunkParts(const ConfigNode& options, const std::vector<int64_t>& inputShape)>
      build;
  /// Its size before it is built, for the memory check (may be empty: unknown).
  std::function<ModelSize(const ConfigNode& options, const std::vector<int64_t>& inputShape)> size;
  /// Whether build() returns a lastLinear (a spatial trunk: a lastLayer),
  /// known before building, so that a strategy needing the last shared layer
  /// is refused at validation.
  bool hasLastLinear = true;
};

/// One `model.head.kind`: a task's tower on a B × width representation (or,
/// spatial, on B × width × H' × W' maps, predicting B × outputs × H' × W').
struct HeadInfo {
  std::string name;         ///< as written in `model.head.kind`
  std::string description;  ///< one line
  /// Takes a spatial trunk's maps and predicts per pixel (dense tasks).
  bool spatial = false;
  /// Validates the options (the `model.head:` mapping). May be empty.
  std::function<void(const ConfigNode& options)> check;
  /// Builds the head of `task` (B × width → B × task.outputs).
  std::function<torch::nn::Sequential(const ConfigNode& options, int64_t width,
                                      const TaskSpec& task)>
      build;
  /// Its size on a `width` input (may be empty: unknown).
  std::function<ModelSize(const ConfigNode& options, int64_t width, const TaskSpec& task)> size;
};

/// What an architecture's planner knows when the experiment is validated.
struct ModelContext {
  std::vector<TaskSpec> tasks;      ///< in head order
  std::vector<int64_t> inputShape;  ///< one example's; empty until a registered dataset is loaded
  std::string dataKind;             ///< `data.kind` (the default trunk depends on it)
  /// The architecture takes spatial trunks and heads (hard sharing); others
  /// refuse them at `kind`.
  bool spatial = false;
};

/// A validated model, not yet built.
struct ModelPlan {
  std::string architecture;  ///< its row's name
  ModelProvides provides;    ///< what the strategies may ask of it
  ModelSize size;            ///< for the memory check; zeros where unknown
  /// Outputs are per pixel (B × outputs × H × W, the inputs' H × W): dense
  /// tasks need it, the others refuse it.
  bool denseOutputs = false;
  /// Builds the model for inputs of one example's shape (the data's).
  std::function<std::shared_ptr<MultiTaskModel>(const std::vector<int64_t>& inputShape)> build;
};

/// One `model.architecture`.
struct ArchitectureInfo {
  std::string name;         ///< as written in `model.architecture`
  std::string description;  ///< one line
  std::string reference;    ///< paper: authors, venue, year ("" for hard sharing)
  /// Reads and validates every key of the `model:` mapping it knows (the
  /// registry rejects the rest) and returns the plan. Throws ConfigError.
  std::function<ModelPlan(const ConfigNode& model, const ModelContext& context)> plan;
};

/// Add rows of the program's own (call from main()); std::invalid_argument
/// if the name is not plain or taken, or a required hook is empty.
void registerArchitecture(ArchitectureInfo info);
void registerTrunk(TrunkInfo info);
void registerHead(HeadInfo info);
/// Every row, built-ins first, then in registration order.
const std::vector<ArchitectureInfo>& architectureTable();
const std::vector<TrunkInfo>& trunkTable();
const std::vector<HeadInfo>& headTable();

/// A trunk chosen by a `trunk:` mapping, validated and ready to build.
struct TrunkPlan {
  std::string kind;
  bool hasLastLinear = true;
  bool spatial = false;
  ModelSize size;  ///< one copy's on the data's inputs; width 0 when unknown
  std::function<TrunkParts(const std::vector<int64_t>& inputShape)> build;
  /// One copy's size on inputs of another shape (zeros when unknown).
  std::function<ModelSize(const std::vector<int64_t>& inputShape)> sizeFor;
};
/// Reads `trunk` (its `kind`, default lenet for multi_fashion, segnet for
/// dense tasks, else mlp, and the row's options). Throws ConfigError, also
/// for a spatial trunk unless `context.spatial`.
TrunkPlan planTrunk(const ConfigNode& trunk, const ModelContext& context);

/// A head chosen by a `head:` mapping.
struct HeadPlan {
  std::string kind;
  bool spatial = false;
  /// Size of all T heads on a `width` input (zeros when unknown).
  std::function<ModelSize(int64_t width)> size;
  std::function<torch::nn::Sequential(int64_t width, const TaskSpec& task)> build;
};
/// Reads `head` (its `kind`, default conv for dense tasks, else linear, and
/// the row's options); a spatial head unless `context.spatial` is refused.
HeadPlan planHead(const ConfigNode& head, const ModelContext& context);

// Parts the architectures share.

/// Every part's last Linear, in order; empty if one part has none.
std::vector<torch::nn::Linear> lastLinearsOf(const std::vector<TrunkParts>& parts);

/// Each part's last Linear among its layers before index `end` (exclusive),
/// found by looking at the layers (ltb's shared stages); empty if one part
/// has none there.
std::vector<torch::nn::Linear> lastLinearsBefore(const std::vector<TrunkParts>& parts,
                                                 std::size_t end);
/// Weight then bias of each layer, in order (a lastSharedLayer()).
std::vector<torch::Tensor> weightsAndBiases(const std::vector<torch::nn::Linear>& layers);
/// Weight then bias of `layer`; empty if the holder is empty (a trunk without one).
std::vector<torch::Tensor> weightsAndBiases(const torch::nn::Linear& layer);
/// Where `parts`' stages end: its stageEnds, with the end of its layers
/// added when they do not close with it (one stage if it declares none).
std::vector<std::size_t> stageEndsOf(const TrunkParts& parts);
/// A ModuleList of the parts' layers, or of `modules`.
torch::nn::ModuleList moduleListOf(const std::vector<TrunkParts>& parts);
torch::nn::ModuleList moduleListOf(const std::vector<torch::nn::Sequential>& modules);
/// One head per task of `tasks`, in order, on `width` inputs.
std::vector<torch::nn::Sequential> buildHeads(const HeadPlan& head, int64_t width,
                                              const std::vector<TaskSpec>& tasks);
/// Adds the size of every task's head on `width` inputs to `size`.
void addHeadSize(ModelSize& size, const HeadPlan& head, int64_t width);
/// "prefix0", "prefix1", ...: `count` names.
std::vector<std::string> numberedNames(const std::string& prefix, std::size_t count);

/// `model.features` of the expert-gated architectures (mmoe, cgc, ple,
/// dselect_k): "experts" (default: the shared experts' outputs, which every
/// task's loss passes through) or "per_task": each task's gated mixture, its
/// head's input (LibMTL's representations for these models). Per-task
/// features are not shared: task t's loss reaches only the t-th, so the
/// per-task representation gradients are orthogonal blocks; a weighting
/// strategy's update equals LibMTL's (mixture t receives w_t ∂L_t/∂m_t),
/// while gradient surgery sees no conflict between tasks. True for per_task.
bool readPerTaskFeatures(const ConfigNode& model);

/// True if some task of `tasks` is dense (per pixel: segmentation, depth, normals).
bool hasDenseTask(const std::vector<TaskSpec>& tasks);

/// The elements of one example of `shape` (1 for an empty shape).
int64_t exampleElements(const std::vector<int64_t>& shape);

/// Validates `spec.model` (`architecture`, default hps, and its options),
/// and checks that the trial fits in memory. Throws ConfigError located at
/// the key (or the `--set` that wrote it).
ModelPlan planModel(const ExperimentSpec& spec);

/// Builds the model of `spec` for the data's `inputShape`, after seeding
/// LibTorch's generator with spec.seed (so a trial's initial parameters
/// depend on its seed alone). Throws ConfigError.
std::shared_ptr<MultiTaskModel> makeModel(const ExperimentSpec& spec,
                                          const std::vector<int64_t>& inputShape);

/// ConfigError at `strategy.name` if `strategy` needs what `plan` lacks,
/// naming the strategy, the architecture and the missing piece.
void checkStrategyFits(const ExperimentSpec& spec, const Strategy& strategy, const ModelPlan& plan);

}  // namespace fulcrum
