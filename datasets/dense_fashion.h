// `data: {kind: dense_fashion}`: the offline dense-prediction benchmark,
// built from the packaged Fashion-MNIST so that a three-task dense
// experiment (segmentation, depth, surface normals, as NYUv2's) runs on any
// machine without downloads.
#pragma once

#include <cstdint>
#include <string>

#include "framework/data.h"

namespace fulcrum {

/// Options of the benchmark (README, "The offline dense benchmark").
/// Each image is a `size` × `size` grey canvas holding `items` Fashion-MNIST
/// items, each resized (bilinear) to a side drawn in [minSide, maxSide] and
/// placed at a random offset. Every item is a tilted plane: its depth is
/// d + 0.02·(a·x + b·y) (x, y in pixels from its centre) with
/// d = 1 + 2·(maxSide − side)/(maxSide − minSide) ± 0.1 (larger items are
/// nearer, so depth is read from size) and slopes a, b uniform in ±0.6, so
/// its normal is (−a, −b, 1)/‖·‖ (the normal of that surface, a pixel being
/// 0.02 depth units); it is shaded by that normal (0.3 + 0.7·max(0, n·l),
/// l ∝ (−1, −1, 2)), so normals are read from shading. Nearer items occlude
/// farther ones. Per pixel of the nearest item whose resized intensity is at
/// least 0.25: its class (0..9), depth and normal; below 0.25 and above 0.05
/// (the item's soft rim): ignored by all three tasks (class −1, depth 0,
/// normal 0); elsewhere the background (class 10), a plane through depth 4
/// at the canvas' centre with slopes uniform in ±0.3, its normal likewise,
/// shaded as the items with albedo 0.15.
/// Splits as Multi-Fashion's: train and validation draw disjoint source
/// images of the training file (`valFraction` of them for validation), test
/// draws the t10k file; each source used about once per split.
struct DenseFashionOptions {
  std::string directory = "/usr/share/datasets/fashion-mnist";  ///< the IDX .gz files
  int64_t size = 32;                                            ///< canvas side, 16..256
  int64_t items = 2;                                            ///< per image, 1..6
  int64_t minSide = 14;  ///< item side range, 4 <= minSide <= maxSide <= size
  int64_t maxSide = 24;
  int64_t trainSize = 3000;
  int64_t valSize = 500;
  int64_t testSize = 1000;
  double valFraction = 0.1;  ///< of the 60000 training sources, in (0, 1)
};

/// The segmentation classes: ten item classes and the background.
inline constexpr int64_t kDenseFashionClasses = 11;

/// Builds the benchmark deterministically from `seed` (inputs N × 1 × size ×
/// size; targets: N × size × size classes, N × 1 × size × size depths,
/// N × 3 × size × size normals). Throws DataError naming a missing or
/// malformed file and the Debian package.
MultiTaskData makeDenseFashion(const DenseFashionOptions& options, uint64_t seed);

/// Registers `data.kind: dense_fashion` (done by registerFileDatasets()).
void registerDenseFashion();

}  // namespace fulcrum
