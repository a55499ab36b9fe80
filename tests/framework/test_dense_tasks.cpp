// The dense task kinds (segmentation, depth, normals): losses, masks and
// metrics against values computed by hand on tiny arrays, and the checks of
// their targets before training.
#include <torch/torch.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "framework/data.h"
#include "framework/task.h"

using namespace fulcrum;
using Catch::Matchers::Contains;

namespace {

/// The metrics after "loss" of `outputs` against `targets`, scored in the
/// batches given (the sums added batch by batch, as over a split).
std::vector<double> metricsOver(TaskKind kind, const std::vector<torch::Tensor>& outputs,
                                const std::vector<torch::Tensor>& targets) {
  const TaskKindInfo& info = taskKindInfo(kind);
  const int64_t width = outputs[0].size(1);
  std::vector<double> sums(info.sumCount(width), 0.0);
  int64_t rows = 0;
  for (std::size_t b = 0; b < outputs.size(); ++b) {
    info.addMetrics(outputs[b], targets[b], sums.data());
    rows += outputs[b].size(0);
  }
  return info.metricsOf(sums.data(), rows, width);
}

/// A B × 3 × 1 × N prediction at angles `degrees` (in the x–z plane) from
/// the normal (0, 0, 1), scaled by `length` (the kind normalises it).
torch::Tensor tilted(const std::vector<double>& degrees, double length) {
  const auto n = static_cast<int64_t>(degrees.size());
  torch::Tensor out = torch::zeros({1, 3, 1, n}, torch::kFloat64);
  for (int64_t i = 0; i < n; ++i) {
    const double a = degrees[static_cast<std::size_t>(i)] * M_PI / 180.0;
    out[0][0][0][i] = length * std::sin(a);
    out[0][2][0][i] = length * std::cos(a);
  }
  return out.to(torch::kFloat32);
}

torch::Tensor upNormals(int64_t n) {
  torch::Tensor g = torch::zeros({1, 3, 1, n});
  g.select(1, 2).fill_(1.0f);
  return g;
}

}  // namespace

TEST_CASE("the dense kinds' rows: names, directions and widths", "[tasks][dense]") {
  CHECK(metricNames(TaskKind::kSegmentation) ==
        std::vector<std::string>{"loss", "miou", "pixel_accuracy"});
  CHECK(metricDirections(TaskKind::kSegmentation) == std::vector<bool>{false, true, true});
  CHECK(metricNames(TaskKind::kDepth) ==
        std::vector<std::string>{"loss", "abs_error", "rel_error"});
  CHECK(metricDirections(TaskKind::kDepth) == std::vector<bool>{false, false, false});
  CHECK(metricNames(TaskKind::kNormals) == std::vector<std::string>{"loss", "angle_mean",
                                                                    "angle_median", "within_11_25",
                                                                    "within_22_5", "within_30"});
  CHECK(metricDirections(TaskKind::kNormals) ==
        std::vector<bool>{false, false, false, true, true, true});
  CHECK(taskKindInfo(TaskKind::kDepth).fixedOutputs == 1);
  CHECK(taskKindInfo(TaskKind::kNormals).fixedOutputs == 3);
  CHECK(taskKindInfo(TaskKind::kSegmentation).outputsRequired);
  for (TaskKind kind : {TaskKind::kSegmentation, TaskKind::kDepth, TaskKind::kNormals})
    CHECK(taskKindInfo(kind).dense);
  CHECK_FALSE(taskKindInfo(TaskKind::kClassification).dense);
}

TEST_CASE("segmentation: cross-entropy over labelled pixels, mIoU without absent classes",
          "[tasks][dense]") {
  const TaskKindInfo& info = taskKindInfo(TaskKind::kSegmentation);
  // Three classes on a 2 × 2 image; logits per pixel (rows y, columns x):
  // (0,0) → class 0, (0,1) → 1, (1,0) → 1, (1,1) → 0.
  torch::Tensor outputs = torch::zeros({1, 3, 2, 2});
  outputs[0][0][0][0] = 2.0f;
  outputs[0][1][0][1] = 1.0f;
  outputs[0][1][1][0] = 3.0f;
  outputs[0][0][1][1] = 1.0f;
  // Truth: 0, 1 / 0, ignored. Class 2 is in neither truth nor prediction.
  const torch::Tensor targets = torch::tensor({0, 1, 0, -1}, torch::kInt64).reshape({1, 2, 2});
  REQUIRE(info.fits(outputs, targets));
  CHECK_FALSE(info.fits(outputs, targets.reshape({1, 4})));
  // −log softmax of the true class at the three labelled pixels.
  auto nll = [](double own, double a, double b) {
    return -(own - std::log(std::exp(own) + std::exp(a) + std::exp(b)));
  };
  const double expected = (nll(2, 0, 0) + nll(1, 0, 0) + nll(0, 3, 0)) / 3.0;
  CHECK(info.lossOf(outputs, targets).item<double>() == Approx(expected));
  // Confusion: (0→0) 1, (1→1) 1, (0→1) 1. IoU₀ = 1/(2+1−1), IoU₁ = 1/(1+2−1);
  // class 2 left out (counted as 0 it would give 1/3). Pixel accuracy 2/3.
  const std::vector<double> metrics = metricsOver(TaskKind::kSegmentation, {outputs}, {targets});
  CHECK(metrics[0] == Approx(0.5));
  CHECK(metrics[1] == Approx(2.0 / 3.0));
  // Over the split, not per batch: the same pixels in two batches of one
  // pixel row each give the same values.
  const std::vector<double> split =
      metricsOver(TaskKind::kSegmentation, {outputs.narrow(2, 0, 1), outputs.narrow(2, 1, 1)},
                  {targets.narrow(1, 0, 1), targets.narrow(1, 1, 1)});
  CHECK(split == metrics);
  // A row whose pixels are all ignored carries no label; its loss is 0, not NaN.
  const torch::Tensor none = torch::full({1, 2, 2}, -1, torch::kInt64);
  CHECK(info.known(torch::cat({targets, none})).equal(torch::tensor({true, false})));
  const torch::Tensor logits = outputs.clone().requires_grad_(true);
  const torch::Tensor zero = info.lossOf(logits, none);
  CHECK(zero.item<double>() == 0.0);
  zero.backward();
  CHECK(logits.grad().abs().sum().item<double>() == 0.0);
}

TEST_CASE("depth: L1 over pixels whose depth is not 0; absolute and relative error",
          "[tasks][dense]") {
  const TaskKindInfo& info = taskKindInfo(TaskKind::kDepth);
  const torch::Tensor outputs = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).reshape({1, 1, 2, 2});
  const torch::Tensor targets = torch::tensor({2.0f, 0.0f, 1.0f, 4.0f}).reshape({1, 1, 2, 2});
  // Valid: 3 pixels, errors 1, 2, 0; relative 1/2, 2/1, 0.
  CHECK(info.lossOf(outputs, targets).item<double>() == Approx(1.0));
  const std::vector<double> metrics = metricsOver(TaskKind::kDepth, {outputs}, {targets});
  CHECK(metrics[0] == Approx(1.0));
  CHECK(metrics[1] == Approx(2.5 / 3.0));
  // Weighted by valid pixels over the split (LibMTL's), not a mean of batch means.
  const torch::Tensor more = torch::tensor({5.0f, 0.0f, 0.0f, 0.0f}).reshape({1, 1, 2, 2});
  const torch::Tensor moreTargets = torch::tensor({1.0f, 0.0f, 0.0f, 0.0f}).reshape({1, 1, 2, 2});
  const std::vector<double> both =
      metricsOver(TaskKind::kDepth, {outputs, more}, {targets, moreTargets});
  CHECK(both[0] == Approx((1.0 + 2.0 + 0.0 + 4.0) / 4.0));
}

TEST_CASE("normals: 1 − cos of the normalised prediction; angle statistics over valid pixels",
          "[tasks][dense]") {
  const TaskKindInfo& info = taskKindInfo(TaskKind::kNormals);
  // Angles 10°, 20°, 40° and a pixel without a normal (target 0), predicted ×3 long.
  torch::Tensor outputs = tilted({10, 20, 40, 5}, 3.0);
  torch::Tensor targets = upNormals(4);
  targets.select(3, 3).zero_();
  const double cosines =
      std::cos(10 * M_PI / 180) + std::cos(20 * M_PI / 180) + std::cos(40 * M_PI / 180);
  CHECK(info.lossOf(outputs, targets).item<double>() == Approx(1.0 - cosines / 3.0));
  const std::vector<double> metrics = metricsOver(TaskKind::kNormals, {outputs}, {targets});
  CHECK(metrics[0] == Approx(70.0 / 3.0).epsilon(1e-5));
  CHECK(std::abs(metrics[1] - 20.0) <= kAngleBinDegrees);  // the median, from the histogram
  CHECK(metrics[2] == Approx(1.0 / 3.0));                  // within 11.25°
  CHECK(metrics[3] == Approx(2.0 / 3.0));                  // within 22.5°
  CHECK(metrics[4] == Approx(2.0 / 3.0));                  // within 30°
  CHECK(info.known(targets).equal(torch::tensor({true})));
}

TEST_CASE("normals: the histogram median is within one bin of the exact median of the split",
          "[tasks][dense]") {
  // 1001 and 1000 angles spread over [0°, 90°) by a fixed sequence, in 4 batches.
  for (int count : {1001, 1000}) {
    std::vector<double> degrees;
    for (int i = 0; i < count; ++i) degrees.push_back(std::fmod(i * 37.123456789, 90.0));
    std::vector<torch::Tensor> outputs, targets;
    const int batch = (count + 3) / 4;
    for (int start = 0; start < count; start += batch) {
      const int end = std::min(count, start + batch);
      outputs.push_back(
          tilted(std::vector<double>(degrees.begin() + start, degrees.begin() + end), 1.0));
      targets.push_back(upNormals(end - start));
    }
    std::vector<double> sorted = degrees;
    std::sort(sorted.begin(), sorted.end());
    const auto half = static_cast<std::size_t>(count / 2);
    const double exact = count % 2 ? sorted[half] : (sorted[half - 1] + sorted[half]) / 2.0;
    const double median = metricsOver(TaskKind::kNormals, outputs, targets)[1];
    INFO(count << " angles: exact median " << exact << ", from the histogram " << median);
    // One bin, plus float32 rounding of the predictions (≤ 1e-3°).
    CHECK(std::abs(median - exact) <= kAngleBinDegrees + 1e-3);
  }
}

TEST_CASE("dense targets are checked before training: shapes and labels, by pixel",
          "[tasks][dense][data]") {
  MultiTaskData data;
  data.inputShape = {1, 2, 3};
  for (Split* split : {&data.train, &data.val, &data.test}) {
    split->inputs = torch::zeros({2, 1, 2, 3});
    split->targets = {torch::zeros({2, 2, 3}, torch::kInt64), torch::ones({2, 2, 3}),
                      upNormals(6).reshape({1, 3, 2, 3}).repeat({2, 1, 1, 1})};
  }
  const std::vector<TaskSpec> tasks = {{"seg", TaskKind::kSegmentation, 4},
                                       {"depth", TaskKind::kDepth, 1},
                                       {"normals", TaskKind::kNormals, 3}};
  SECTION("accepted: an N × H × W depth becomes N × 1 × H × W") {
    conformTargets(data, tasks);
    CHECK(data.train.targets[1].sizes() == torch::IntArrayRef({2, 1, 2, 3}));
    CHECK(data.test.targets[0].scalar_type() == torch::kInt64);
  }
  SECTION("a class outside 0..outputs−1 other than −1, named by example and pixel") {
    data.val.targets[0][1][1][2] = 4;
    CHECK_THROWS_WITH(conformTargets(data, tasks),
                      Contains("task 'seg'") && Contains("validation split") &&
                          Contains("class 4 at example 1, pixel (y 1, x 2)") &&
                          Contains("labels are 0..3"));
  }
  SECTION("a map of another size than the inputs'") {
    data.train.targets[1] = torch::ones({2, 1, 3, 2});
    CHECK_THROWS_WITH(conformTargets(data, tasks),
                      Contains("task 'depth'") && Contains("expected 2 × 1 × 2 × 3"));
  }
  SECTION("a NaN normal, named by channel and pixel") {
    data.test.targets[2][0][1][0][2] = std::nanf("");
    CHECK_THROWS_WITH(conformTargets(data, tasks),
                      Contains("example 0, channel 1, pixel (y 0, x 2)") && Contains("not NaN"));
  }
  SECTION("per-pixel targets on flat inputs") {
    for (Split* split : {&data.train, &data.val, &data.test}) split->inputs = torch::zeros({2, 6});
    CHECK_THROWS_WITH(conformTargets(data, tasks), Contains("a dense task needs images"));
  }
}
