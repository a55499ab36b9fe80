// The offline dense benchmark: what each pixel's three targets say agrees
// with how the images are made, deterministically from the seed.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "datasets/dense_fashion.h"

using namespace fulcrum;
using Catch::Matchers::Contains;

TEST_CASE("dense_fashion: classes, depths and normals agree pixel by pixel", "[datasets][dense]") {
  DenseFashionOptions options;
  options.trainSize = 40;
  options.valSize = 10;
  options.testSize = 10;
  const MultiTaskData data = makeDenseFashion(options, 3);
  CHECK(data.inputShape == std::vector<int64_t>{1, 32, 32});
  REQUIRE(data.tasks.size() == 3);
  CHECK(data.tasks[0].kind == TaskKind::kSegmentation);
  CHECK(data.tasks[0].outputs == kDenseFashionClasses);
  for (const Split* split : {&data.train, &data.val, &data.test}) {
    const torch::Tensor& x = split->inputs;
    const torch::Tensor& classes = split->targets[0];
    const torch::Tensor depth = split->targets[1].squeeze(1);
    const torch::Tensor& normals = split->targets[2];
    CHECK(x.min().item<float>() >= 0.0f);
    CHECK(x.max().item<float>() <= 1.0f);
    const torch::Tensor background = classes.eq(10), ignored = classes.eq(-1);
    const torch::Tensor items = classes.ge(0).logical_and(classes.lt(10));
    CHECK((background.logical_or(ignored).logical_or(items)).all().item<bool>());
    CHECK(items.any().item<bool>());
    CHECK(ignored.any().item<bool>());
    // Background: a plane through depth 4 tilted by at most 0.3 per axis
    // (16 pixels from the centre at most), unit normals, intensity ≤ 0.15.
    const double groundTilt = 0.02 * 0.3 * 2 * 16;
    CHECK(depth.masked_select(background).sub(4.0f).abs().max().item<double>() <=
          groundTilt + 1e-5);
    CHECK(normals.norm(2, 1).masked_select(background).sub(1.0f).abs().max().item<float>() < 1e-5f);
    CHECK(normals.select(1, 2).masked_select(background).min().item<float>() >=
          std::cos(std::atan(0.3 * std::sqrt(2.0))) - 1e-5);
    CHECK(x.squeeze(1).masked_select(background).max().item<float>() <= 0.15f + 1e-6f);
    // Ignored by segmentation: missing for depth and normals too.
    CHECK(depth.masked_select(ignored).eq(0.0f).all().item<bool>());
    CHECK(normals.abs().sum(1).masked_select(ignored).eq(0.0f).all().item<bool>());
    // Items: unit normals facing the camera, tilted at most atan(0.6·√2);
    // depths within 1 − 0.1 and 3 + 0.1, give or take the tilt across an item.
    const torch::Tensor length = normals.norm(2, 1).masked_select(items);
    CHECK(length.sub(1.0f).abs().max().item<float>() < 1e-5f);
    CHECK(normals.select(1, 2).masked_select(items).min().item<float>() >=
          std::cos(std::atan(0.6 * std::sqrt(2.0))) - 1e-5);
    const torch::Tensor itemDepth = depth.masked_select(items);
    const double tilt = 0.02 * 0.6 * 2 * 12;  // slope 0.6 in x and y, 12 pixels from the centre
    CHECK(itemDepth.min().item<double>() >= 0.9 - tilt);
    CHECK(itemDepth.max().item<double>() <= 3.1 + tilt);
  }
  // Deterministic from the seed; another seed, other images.
  const MultiTaskData again = makeDenseFashion(options, 3);
  CHECK(again.train.inputs.equal(data.train.inputs));
  CHECK(again.test.targets[2].equal(data.test.targets[2]));
  CHECK_FALSE(makeDenseFashion(options, 4).train.inputs.equal(data.train.inputs));
}

TEST_CASE("dense_fashion: larger items are nearer, so depth is read from size",
          "[datasets][dense]") {
  // One item per image: its depth falls as its side grows (d = 1 + 2·(24 −
  // side)/10 ± 0.1), so the pixels it covers and its mean depth correlate
  // negatively across images.
  DenseFashionOptions options;
  options.items = 1;
  options.trainSize = 200;
  options.valSize = 1;
  options.testSize = 1;
  const MultiTaskData data = makeDenseFashion(options, 0);
  const torch::Tensor items =
      data.train.targets[0].ge(0).logical_and(data.train.targets[0].lt(10)).to(torch::kFloat64);
  const torch::Tensor depth = data.train.targets[1].squeeze(1).to(torch::kFloat64);
  const torch::Tensor area = items.sum({1, 2});
  const torch::Tensor mean = (depth * items).sum({1, 2}) / area.clamp_min(1);
  const torch::Tensor a = area - area.mean(), d = mean - mean.mean();
  const double correlation =
      ((a * d).sum() / (a.square().sum().sqrt() * d.square().sum().sqrt())).item<double>();
  INFO("correlation of item area and depth: " << correlation);
  CHECK(correlation < -0.5);
}

TEST_CASE("dense_fashion: a missing source file names the path and the package",
          "[datasets][dense]") {
  DenseFashionOptions options;
  options.directory = "/nonexistent/fashion";
  CHECK_THROWS_WITH(makeDenseFashion(options, 0),
                    Contains("/nonexistent/fashion/train-images-idx3-ubyte.gz: file not found") &&
                        Contains("dataset-fashion-mnist"));
}
