// Learning to Branch: Guo, Lee, Ulbricht, "Learning to Branch for
// Multi-Task Learning", ICML 2020; in LibMTL's form (LTB.py).
#pragma once

#include <torch/nn/modules/container/modulelist.h>

#include <cstdint>
#include <string>
#include <vector>

#include "models/registry.h"

namespace fulcrum {

/// One column per task (each a `model.trunk` of S ≥ 2 stages); stage 0 of
/// column t reads the input, and every later stage l of column t reads a
/// branching of the columns' previous stage:
/// \f[ \mathrm{in}_{t,l} = \sum_j a_l[t][j]\, \mathrm{out}_{j,l-1}, \qquad
///     y_t = \mathrm{head}_t(\mathrm{out}_{t,S-1}) \f]
/// with a_l[t] = gumbel_softmax(α_l[t], τ, hard) — a one-hot choice of
/// column t's parent at stage l, trained through the straight-through
/// estimator — and τ = (E/20)/√(e+1) at epoch e of E. During the warm-up
/// (e < E/100 as in LibMTL, or e < `warmup_epochs`; and whenever the model
/// has not been told the epoch) every a_l is all ones: each column reads
/// the sum of the previous stage's, and α gets no gradient.
/// Evaluation samples as training does (LibMTL's choice) or, with
/// `evaluation: argmax`, takes the most likely parent.
///
/// The split: stages 0..S−2 of every column and α reach several tasks'
/// losses (shared); column t's last stage and head t only task t's. The
/// features are the last stages' inputs in_{t,S−1}, one per task, which
/// cut every path from the shared parameters to the losses. Last shared
/// layer: each column's last Linear before its last stage.
class LtbModel : public MultiTaskModel {
 public:
  /// `warmupEpochs` < 0: LibMTL's warm-up, the first E/100 epochs.
  LtbModel(std::vector<TrunkParts> columns, bool sampleInEvaluation, int64_t warmupEpochs,
           const std::vector<torch::nn::Sequential>& heads);
  ModelOutput forward(const ModelInputs& inputs) override;
  void beginEpoch(int64_t epoch, int64_t epochs) override;
  std::vector<torch::Tensor> sharedParameters() const override;
  std::vector<torch::Tensor> taskParameters(std::size_t task) const override;
  std::vector<torch::Tensor> lastSharedLayer() const override;
  std::vector<std::string> featureNames() const override;
  std::size_t taskCount() const override { return heads_->size(); }

  /// Whether the next forward passes sum the columns (the warm-up).
  bool warmingUp() const;
  /// τ of the current epoch (meaningful after the warm-up).
  double temperature() const;
  /// The branching the next forward pass uses: (S−1) × T × T, row t of
  /// slice l−1 the weights of column t's parents at stage l (one draw).
  torch::Tensor branching();

 private:
  /// The index of a column's first layer of its last stage.
  std::size_t lastStageBegin() const { return stageEnds_[stageEnds_.size() - 2] + 1; }

  torch::nn::ModuleList columns_{nullptr};
  torch::nn::ModuleList heads_{nullptr};
  torch::Tensor alpha_;                 ///< (S−1) × T × T logits of the parents
  std::vector<std::size_t> stageEnds_;  ///< of every column (all alike)
  std::vector<torch::nn::Linear> lastShared_;
  bool sampleInEvaluation_ = true;
  int64_t warmupEpochs_ = -1;       ///< < 0: E/100
  int64_t epoch_ = 0, epochs_ = 0;  ///< 0 epochs: never told (the warm-up)
};

/// `model.architecture: ltb`. Options: `evaluation`, `sample` (default, as
/// LibMTL) or `argmax`; `warmup_epochs` (default: LibMTL's E/100).
ArchitectureInfo ltbArchitecture();

}  // namespace fulcrum
