// PLE: Tang, Liu, Zhao, Gong, "Progressive Layered Extraction (PLE): A Novel
// Multi-Task Learning (MTL) Model for Personalized Recommendations", RecSys 2020.
#pragma once

#include <torch/nn/modules/container/modulelist.h>

#include "models/registry.h"

namespace fulcrum {

/// L levels of extraction networks (the paper's form: MLP experts, and a
/// shared gate at every level but the last). At level l, with the task
/// branches h_t and the shared branch h_s (all x at level 1):
/// \f[ h_t \leftarrow \sum_{e \in S_l \cup E_{t,l}} \mathrm{softmax}(G_{t,l}\,\bar h_t)_e\, f_e,
///     \qquad h_s \leftarrow \sum_{e \in S_l \cup \bigcup_t E_{t,l}} \mathrm{softmax}(G_{s,l}\,\bar
///     h_s)_e\, f_e \f]
/// where shared experts f ∈ S_l read h_s and task t's experts E_{t,l} read
/// h_t; then y_t = head_t(h_t). Features: the last level's shared expert
/// outputs and, with two levels or more, the task branches h_t entering
/// the last level (task t's last-level experts and gate read them, so the
/// lower levels reach the losses through them as well). Shared parameters: everything several
/// tasks' losses reach — the shared experts and gates, the task experts below the last level
/// (through the shared gate they feed every task) and the task gates below
/// the last two levels (they feed such experts); task t's: its gates of the
/// last two levels, its last-level experts and its head. One input batch
/// for all tasks.
class PleModel : public MultiTaskModel {
 public:
  /// `levels[l]`: level l's modules, each expert from the same trunk row.
  struct Level {
    std::vector<TrunkParts> shared;
    std::vector<std::vector<TrunkParts>> own;  ///< per task
    std::vector<torch::nn::Linear> taskGates;  ///< per task
    torch::nn::Linear sharedGate{nullptr};     ///< null at the last level
  };
  PleModel(std::vector<Level> levels, const std::vector<torch::nn::Sequential>& heads);
  ModelOutput forward(const ModelInputs& inputs) override;
  std::vector<torch::Tensor> sharedParameters() const override;
  std::vector<torch::Tensor> taskParameters(std::size_t task) const override;
  std::vector<torch::Tensor> lastSharedLayer() const override;
  std::vector<std::string> featureNames() const override;
  std::size_t taskCount() const override { return heads_->size(); }
  /// Features: each task's last mixture, its head's input (`features:
  /// per_task`, see readPerTaskFeatures), instead of the last level's.
  void setPerTaskFeatures(bool perTask) { perTaskFeatures_ = perTask; }

 private:
  struct LevelModules {
    torch::nn::ModuleList shared{nullptr};
    torch::nn::ModuleList own{nullptr};  ///< per task, a ModuleList
    torch::nn::ModuleList taskGates{nullptr};
    torch::nn::Linear sharedGate{nullptr};
  };
  std::vector<LevelModules> levels_;
  torch::nn::ModuleList heads_{nullptr};
  std::vector<torch::nn::Linear> lastLayers_;  ///< the last level's shared experts'
  bool perTaskFeatures_ = false;
};

/// `model.architecture: ple`. Options: `levels` (L, in [1, 10], default 2),
/// `shared_experts` and `task_experts` per level (in [1, 1000], default 1);
/// each expert a `model.trunk` (level 1 on the input, later levels on the
/// previous level's output).
ArchitectureInfo pleArchitecture();

}  // namespace fulcrum
