#include "framework/task.h"

#include <torch/nn/functional/loss.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "framework/data.h"

namespace fulcrum {

namespace {

/// One label per row: a vector as long as the outputs' rows.
bool oneLabelPerRow(const torch::Tensor& outputs, const torch::Tensor& targets) {
  return outputs.dim() == 2 && targets.dim() == 1 && outputs.size(0) == targets.size(0);
}

/// Rows whose targets hold no NaN.
torch::Tensor finiteRows(const torch::Tensor& targets) {
  return targets.dim() > 1 ? targets.isnan().logical_not().flatten(1).all(1)
                           : targets.isnan().logical_not();
}

// Regression: sums of squared and absolute errors and of the elements.
void addErrors(const torch::Tensor& outputs, const torch::Tensor& targets, double* sums) {
  const torch::Tensor diff = outputs - targets;
  sums[0] += diff.square().sum().item<double>();
  sums[1] += diff.abs().sum().item<double>();
  sums[2] += static_cast<double>(diff.numel());
}

std::vector<double> meanErrors(const double* sums, int64_t, int64_t) {
  const double elements = std::max(sums[2], 1.0);
  return {sums[0] / elements, sums[1] / elements};
}

// Classification and binary: the correct rows.
std::vector<double> accuracy(const double* sums, int64_t rows, int64_t) {
  return {sums[0] / static_cast<double>(rows)};
}

std::size_t one(int64_t) { return 1; }

/// Adds to sums[0, bins) how often each value of `indices` (int64 in [0, bins)) occurs.
void addCounts(const torch::Tensor& indices, int64_t bins, double* sums) {
  const torch::Tensor counts = torch::bincount(indices, {}, bins).to(torch::kFloat64);
  const double* c = counts.data_ptr<double>();
  for (int64_t b = 0; b < bins; ++b) sums[b] += c[b];
}

// Binary: the correct rows, Σ log-loss, true positives, false positives and
// false negatives at σ(logit) > 0.5, then per bin of σ(logit) the positive
// and the negative rows (the AUC's histogram).
constexpr int64_t kScoreBins = 10000;
constexpr std::size_t kBinaryHeader = 5;

std::size_t binarySums(int64_t) { return kBinaryHeader + 2 * kScoreBins; }

void addBinary(const torch::Tensor& outputs, const torch::Tensor& targets, double* sums) {
  const torch::Tensor logits = outputs.squeeze(-1).to(torch::kFloat64);
  const torch::Tensor y = targets.to(torch::kFloat64);
  const torch::Tensor positive = y.gt(0.5);
  const torch::Tensor predicted = logits.gt(0);
  sums[0] += predicted.eq(positive).sum().item<double>();
  sums[2] += predicted.logical_and(positive).sum().item<double>();
  sums[3] += predicted.logical_and(positive.logical_not()).sum().item<double>();
  sums[4] += predicted.logical_not().logical_and(positive).sum().item<double>();
  // −[y log σ(x) + (1 − y) log(1 − σ(x))] = softplus(x) − y·x, stable for any x.
  sums[1] += (torch::nn::functional::softplus(logits) - y * logits).sum().item<double>();
  const torch::Tensor bins = (torch::sigmoid(logits) * static_cast<double>(kScoreBins))
                                 .floor()
                                 .to(torch::kInt64)
                                 .clamp(0, kScoreBins - 1);
  double* histogram = sums + kBinaryHeader;
  addCounts(bins.masked_select(positive), kScoreBins, histogram);
  addCounts(bins.masked_select(positive.logical_not()), kScoreBins, histogram + kScoreBins);
}

/// The AUC from the histograms: the share of (positive, negative) pairs
/// ordered correctly, pairs in one bin counted half (as ties); it differs
/// from the exact AUC by at most half the share of pairs that share a bin.
double histogramAuc(const double* positives, const double* negatives) {
  double pairs = 0.0, below = 0.0, total = 0.0;  // below: the negatives in lower bins
  for (int64_t b = 0; b < kScoreBins; ++b) {
    pairs += positives[b] * (below + 0.5 * negatives[b]);
    below += negatives[b];
    total += positives[b];
  }
  if (total == 0 || below == 0) return std::nan("");
  return pairs / (total * below);
}

std::vector<double> binaryMetrics(const double* sums, int64_t rows, int64_t) {
  const auto n = static_cast<double>(rows);
  const double* histogram = sums + kBinaryHeader;
  // F1 = 2TP / (2TP + FP + FN) over the split (FAMO's CelebA metric, without its ε).
  const double f1Denominator = 2 * sums[2] + sums[3] + sums[4];
  return {sums[0] / n, histogramAuc(histogram, histogram + kScoreBins), sums[1] / n,
          f1Denominator > 0 ? 2 * sums[2] / f1Denominator : std::nan("")};
}
std::size_t three(int64_t) { return 3; }

// Dense kinds. A batch's loss is a mean over its valid pixels (zero, with
// the head still in the graph, when it has none); metrics are sums over the
// split's valid pixels, so a split is scored as one set of pixels.

/// B × H × W class indices (−1 ignored) for B × C × H × W outputs, or a
/// B × C × H × W target of the outputs' shape.
bool sameSpatialShape(const torch::Tensor& outputs, const torch::Tensor& targets) {
  return outputs.dim() == 4 && outputs.sizes() == targets.sizes();
}

bool classMap(const torch::Tensor& outputs, const torch::Tensor& targets) {
  return outputs.dim() == 4 && targets.dim() == 3 && outputs.size(0) == targets.size(0) &&
         outputs.size(2) == targets.size(1) && outputs.size(3) == targets.size(2);
}

/// Per row of a dense target, true where it has a valid pixel.
torch::Tensor rowsWithPixels(const torch::Tensor& valid) { return valid.flatten(1).any(1); }

torch::Tensor labelledPixels(const torch::Tensor& targets) { return targets.ne(kMissingClass); }
/// Depth: the MTAN / LibMTL mask, a pixel is valid where its depth is not 0.
torch::Tensor validDepth(const torch::Tensor& targets) { return targets.ne(0); }
/// Normals: valid where the components do not sum to 0 (the references' mask:
/// a sum, not a norm), B × 1 × H × W.
torch::Tensor validNormals(const torch::Tensor& targets) {
  return targets.sum(1, /*keepdim=*/true).ne(0);
}

torch::Tensor perValidPixel(const torch::Tensor& total, const torch::Tensor& valid) {
  return total / valid.sum().clamp_min(1).to(total.scalar_type());
}

torch::Tensor segmentationLoss(const torch::Tensor& outputs, const torch::Tensor& targets) {
  namespace F = torch::nn::functional;
  const torch::Tensor total = F::cross_entropy(
      outputs, targets,
      F::CrossEntropyFuncOptions().ignore_index(kMissingClass).reduction(torch::kSum));
  return perValidPixel(total, labelledPixels(targets));
}

/// The confusion matrix, C × C (row: true class, column: predicted).
void addConfusion(const torch::Tensor& outputs, const torch::Tensor& targets, double* sums) {
  const int64_t classes = outputs.size(1);
  const torch::Tensor valid = labelledPixels(targets);
  const torch::Tensor truth = targets.masked_select(valid);
  const torch::Tensor predicted = outputs.argmax(1).masked_select(valid);
  addCounts(truth * classes + predicted, classes * classes, sums);
}

/// mIoU over the classes present in the ground truth or the prediction (a
/// class absent from both is left out), and pixel accuracy.
std::vector<double> segmentationMetrics(const double* sums, int64_t, int64_t classes) {
  double iou = 0.0, diagonal = 0.0, total = 0.0;
  int64_t present = 0;
  for (int64_t c = 0; c < classes; ++c) {
    double row = 0.0, column = 0.0;
    for (int64_t k = 0; k < classes; ++k) {
      row += sums[c * classes + k];
      column += sums[k * classes + c];
    }
    const double hit = sums[c * classes + c];
    diagonal += hit;
    total += row;
    const double unite = row + column - hit;
    if (unite > 0) {
      iou += hit / unite;
      ++present;
    }
  }
  const double nan = std::nan("");
  return {present > 0 ? iou / static_cast<double>(present) : nan,
          total > 0 ? diagonal / total : nan};
}

torch::Tensor depthLoss(const torch::Tensor& outputs, const torch::Tensor& targets) {
  const torch::Tensor valid = validDepth(targets);
  return perValidPixel(((outputs - targets).abs() * valid).sum(), valid);
}

// Depth: Σ|p − g|, Σ|p − g| / g and the valid pixels.
void addDepthErrors(const torch::Tensor& outputs, const torch::Tensor& targets, double* sums) {
  const torch::Tensor valid = validDepth(targets);
  const torch::Tensor g = targets.masked_select(valid).to(torch::kFloat64);
  const torch::Tensor error = (outputs.masked_select(valid).to(torch::kFloat64) - g).abs();
  sums[0] += error.sum().item<double>();
  sums[1] += (error / g.abs()).sum().item<double>();
  sums[2] += static_cast<double>(g.numel());
}

std::vector<double> depthMetrics(const double* sums, int64_t, int64_t) {
  if (sums[2] == 0) return {std::nan(""), std::nan("")};
  return {sums[0] / sums[2], sums[1] / sums[2]};
}

/// The prediction scaled to unit length per pixel (MTAN normalises inside
/// its model; here the loss and metrics do, so any head predicts normals).
torch::Tensor unitNormals(const torch::Tensor& outputs) {
  return outputs / outputs.norm(2, 1, /*keepdim=*/true).clamp_min(1e-12);
}

torch::Tensor normalsLoss(const torch::Tensor& outputs, const torch::Tensor& targets) {
  const torch::Tensor valid = validNormals(targets);
  const torch::Tensor cosine = (unitNormals(outputs) * targets).sum(1, true);
  return 1.0 - perValidPixel((cosine * valid).sum(), valid);
}

constexpr int64_t kAngleBins = 18000;  // 180° / kAngleBinDegrees
static_assert(kAngleBins * kAngleBinDegrees > 179.999 && kAngleBins * kAngleBinDegrees < 180.001);
// Sums: Σθ, the valid pixels, the pixels within 11.25°, 22.5°, 30°, then the histogram.
constexpr std::size_t kAngleHeader = 5;

std::size_t angleSums(int64_t) { return kAngleHeader + kAngleBins; }

void addAngles(const torch::Tensor& outputs, const torch::Tensor& targets, double* sums) {
  const torch::Tensor valid = validNormals(targets).squeeze(1);
  const torch::Tensor cosine =
      (unitNormals(outputs).to(torch::kFloat64) * targets.to(torch::kFloat64)).sum(1);
  const torch::Tensor degrees =
      torch::acos(cosine.masked_select(valid).clamp(-1.0, 1.0)) * (180.0 / M_PI);
  sums[0] += degrees.sum().item<double>();
  sums[1] += static_cast<double>(degrees.numel());
  const double thresholds[3] = {11.25, 22.5, 30.0};
  for (int i = 0; i < 3; ++i) sums[2 + i] += degrees.lt(thresholds[i]).sum().item<double>();
  const torch::Tensor bins =
      (degrees / kAngleBinDegrees).floor().to(torch::kInt64).clamp(0, kAngleBins - 1);
  addCounts(bins, kAngleBins, sums + kAngleHeader);
}

/// The median of the histogram: the point where half the pixels lie below,
/// the counts taken as spread evenly across each bin (error < one bin).
double histogramMedian(const double* histogram, double count) {
  const double half = count / 2.0;
  double below = 0.0;
  for (int64_t b = 0; b < kAngleBins; ++b) {
    if (histogram[b] > 0 && below + histogram[b] >= half)
      return (static_cast<double>(b) + (half - below) / histogram[b]) * kAngleBinDegrees;
    below += histogram[b];
  }
  return static_cast<double>(kAngleBins) * kAngleBinDegrees;
}

std::vector<double> angleMetrics(const double* sums, int64_t, int64_t) {
  const double count = sums[1];
  if (count == 0) return std::vector<double>(5, std::nan(""));
  return {sums[0] / count, histogramMedian(sums + kAngleHeader, count), sums[2] / count,
          sums[3] / count, sums[4] / count};
}

}  // namespace

const std::vector<TaskKindInfo>& taskKindTable() {
  static const std::vector<TaskKindInfo> table = {
      {TaskKind::kRegression,
       "regression",
       "mean squared error over the labelled rows (NaN targets are missing)",
       {{"loss", false}, {"mse", false}, {"mae", false}},
       "the outputs' shape",
       0,
       false,
       1,
       false,
       true,
       [](const torch::Tensor& outputs, const torch::Tensor& targets) {
         return outputs.sizes() == targets.sizes();
       },
       [](const torch::Tensor& outputs, const torch::Tensor& targets) {
         return torch::nn::functional::mse_loss(outputs, targets);
       },
       finiteRows,
       three,
       addErrors,
       meanErrors},
      {TaskKind::kClassification,
       "classification",
       "cross-entropy over `outputs` classes, labelled rows only (class -1 is missing)",
       {{"loss", false}, {"accuracy", true}},
       "one label per row",
       0,
       true,
       2,
       false,
       false,
       oneLabelPerRow,
       [](const torch::Tensor& outputs, const torch::Tensor& targets) {
         return torch::nn::functional::cross_entropy(outputs, targets);
       },
       [](const torch::Tensor& targets) { return targets.ne(kMissingClass); },
       one,
       [](const torch::Tensor& outputs, const torch::Tensor& targets, double* sums) {
         sums[0] += outputs.argmax(1).eq(targets).sum().item<double>();
       },
       accuracy},
      {TaskKind::kBinary,
       "binary",
       "binary cross-entropy with logits (one output), labelled rows only (NaN is missing)",
       {{"loss", false}, {"accuracy", true}, {"auc", true}, {"log_loss", false}, {"f1", true}},
       "one label per row",
       1,
       false,
       1,
       false,
       false,
       [](const torch::Tensor& outputs, const torch::Tensor& targets) {
         return oneLabelPerRow(outputs, targets) && outputs.size(1) == 1;
       },
       [](const torch::Tensor& outputs, const torch::Tensor& targets) {
         return torch::nn::functional::binary_cross_entropy_with_logits(outputs.squeeze(-1),
                                                                        targets);
       },
       finiteRows,
       binarySums,
       addBinary,
       binaryMetrics},
      {TaskKind::kSegmentation,
       "segmentation",
       "per-pixel cross-entropy over `outputs` classes, mean over labelled pixels (class -1 "
       "is ignored)",
       {{"loss", false}, {"miou", true}, {"pixel_accuracy", true}},
       "N × H × W class indices",
       0,
       true,
       2,
       true,
       false,
       classMap,
       segmentationLoss,
       [](const torch::Tensor& targets) { return rowsWithPixels(labelledPixels(targets)); },
       [](int64_t classes) { return static_cast<std::size_t>(classes * classes); },
       addConfusion,
       segmentationMetrics},
      {TaskKind::kDepth,
       "depth",
       "L1 over valid pixels (depth 0 is missing), mean over them",
       {{"loss", false}, {"abs_error", false}, {"rel_error", false}},
       "N × 1 × H × W depths",
       1,
       false,
       1,
       true,
       true,
       sameSpatialShape,
       depthLoss,
       [](const torch::Tensor& targets) { return rowsWithPixels(validDepth(targets)); },
       three,
       addDepthErrors,
       depthMetrics},
      {TaskKind::kNormals,
       "normals",
       "1 − cosine of the normalised prediction and the target, mean over valid pixels "
       "(components summing to 0 are missing)",
       {{"loss", false},
        {"angle_mean", false},
        {"angle_median", false},
        {"within_11_25", true},
        {"within_22_5", true},
        {"within_30", true}},
       "N × 3 × H × W unit normals",
       3,
       false,
       3,
       true,
       true,
       sameSpatialShape,
       normalsLoss,
       [](const torch::Tensor& targets) { return rowsWithPixels(validNormals(targets)); },
       angleSums,
       addAngles,
       angleMetrics},
  };
  return table;
}

const TaskKindInfo& taskKindInfo(TaskKind kind) {
  for (const auto& row : taskKindTable()) {
    if (row.kind == kind) return row;
  }
  // Only reachable through a value cast from an integer outside the enum.
  throw std::invalid_argument("TaskKind: invalid value " + std::to_string(static_cast<int>(kind)));
}

std::string toString(TaskKind kind) { return taskKindInfo(kind).name; }

std::vector<std::string> metricNames(TaskKind kind) {
  std::vector<std::string> names;
  for (const auto& metric : taskKindInfo(kind).metrics) names.push_back(metric.name);
  return names;
}

std::vector<bool> metricDirections(TaskKind kind) {
  std::vector<bool> higher;
  for (const auto& metric : taskKindInfo(kind).metrics) higher.push_back(metric.higherIsBetter);
  return higher;
}

}  // namespace fulcrum
