#include "datasets/dense_fashion.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "framework/extension_registry.h"

namespace fulcrum {

namespace {

namespace fs = std::filesystem;

constexpr const char* kPackage = "dataset-fashion-mnist";
constexpr int64_t kSourceSide = 28;
constexpr int64_t kBackground = 10;
constexpr float kBackgroundDepth = 4.0f;
constexpr float kItemThreshold = 0.25f;  // resized intensity of an item's pixels
constexpr float kRimThreshold = 0.05f;   // above it and below the item's: ignored
constexpr double kPixelPitch = 0.02;     // depth units per pixel
constexpr double kMaxSlope = 0.6;
constexpr double kMaxBackgroundSlope = 0.3;
constexpr double kBackgroundAlbedo = 0.15;  // items' albedo is their resized intensity

uint64_t splitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// Draws of one stream of one seed: uniform doubles and unbiased integers
/// from the 64-bit Mersenne Twister (whose output the standard fixes).
class Draws {
 public:
  Draws(uint64_t seed, uint64_t stream) : engine_(splitMix64(seed ^ splitMix64(stream))) {}
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Uniform in [0, n), n >= 1.
  int64_t below(int64_t n) {
    const auto range = static_cast<uint64_t>(n);
    const uint64_t threshold = (0 - range) % range;
    for (;;) {
      const uint64_t r = engine_();
      if (r >= threshold) return static_cast<int64_t>(r % range);
    }
  }
  template <typename T>
  void shuffle(std::vector<T>& values) {
    for (std::size_t i = values.size(); i > 1; --i)
      std::swap(values[i - 1], values[static_cast<std::size_t>(below(static_cast<int64_t>(i)))]);
  }

 private:
  std::mt19937_64 engine_;
};

struct Source {
  torch::Tensor images;  ///< N × 28 × 28 uint8
  torch::Tensor labels;  ///< N uint8, 0..9
};

std::string hint(const std::string& message) {
  return fmt::format(
      "dense_fashion: {} (the benchmark is built from the Fashion-MNIST IDX files "
      "of the Debian package {}; or set `directory`)",
      message, kPackage);
}

Source loadSource(const std::string& directory, const std::string& prefix) {
  const fs::path images = fs::path(directory) / (prefix + "-images-idx3-ubyte.gz");
  const fs::path labels = fs::path(directory) / (prefix + "-labels-idx1-ubyte.gz");
  Source source;
  for (const fs::path& path : {images, labels}) {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw DataError(hint(path.string() + ": file not found"));
  }
  try {
    source.images = readIdxGz(images.string());
    source.labels = readIdxGz(labels.string());
  } catch (const DataError& error) {
    throw DataError(hint(error.what()));
  }
  if (source.images.dim() != 3 || source.images.size(1) != kSourceSide ||
      source.images.size(2) != kSourceSide) {
    throw DataError(hint(fmt::format("{}: expected N × 28 × 28 images, got {}", images.string(),
                                     c10::str(source.images.sizes()))));
  }
  if (source.labels.dim() != 1 || source.labels.size(0) != source.images.size(0) ||
      source.labels.max().item<int64_t>() > 9) {
    throw DataError(hint(
        fmt::format("{}: expected {} labels in 0..9", labels.string(), source.images.size(0))));
  }
  return source;
}

/// A tilted plane's unit normal (−a, −b, 1)/‖·‖ and its shade under the light.
struct Facet {
  double normal[3];
  double shade;
  Facet(double slopeX, double slopeY) {
    const double norm = std::sqrt(slopeX * slopeX + slopeY * slopeY + 1);
    normal[0] = -slopeX / norm;
    normal[1] = -slopeY / norm;
    normal[2] = 1.0 / norm;
    const double l = 1.0 / std::sqrt(6.0);  // the light, ∝ (−1, −1, 2)
    shade = 0.3 + 0.7 * std::max(0.0, -l * normal[0] - l * normal[1] + 2 * l * normal[2]);
  }
};

/// One item of one image, as drawn.
struct Item {
  int64_t source = 0, side = 0, top = 0, left = 0;
  double depth = 0, slopeX = 0, slopeY = 0;
  torch::Tensor texture;  ///< side × side float, in [0, 1]
};

Split compose(const Source& source, const std::vector<int64_t>& pool, int64_t count,
              const DenseFashionOptions& o, uint64_t seed, uint64_t stream) {
  Draws draws(seed, stream);
  std::vector<int64_t> order = pool;
  draws.shuffle(order);
  const int64_t s = o.size, plane = s * s;
  const uint8_t* labels = source.labels.data_ptr<uint8_t>();
  std::vector<std::vector<Item>> drawn(static_cast<std::size_t>(count));
  std::vector<std::array<double, 2>> backgrounds(static_cast<std::size_t>(count));
  for (int64_t j = 0; j < count; ++j) {
    backgrounds[j] = {draws.uniform(-kMaxBackgroundSlope, kMaxBackgroundSlope),
                      draws.uniform(-kMaxBackgroundSlope, kMaxBackgroundSlope)};
    for (int64_t k = 0; k < o.items; ++k) {
      Item item;
      item.source = order[static_cast<std::size_t>((j * o.items + k) % (int64_t)order.size())];
      item.side = o.minSide + draws.below(o.maxSide - o.minSide + 1);
      item.top = draws.below(s - item.side + 1);
      item.left = draws.below(s - item.side + 1);
      const double span = static_cast<double>(std::max<int64_t>(o.maxSide - o.minSide, 1));
      item.depth =
          1.0 + 2.0 * static_cast<double>(o.maxSide - item.side) / span + draws.uniform(-0.1, 0.1);
      item.slopeX = draws.uniform(-kMaxSlope, kMaxSlope);
      item.slopeY = draws.uniform(-kMaxSlope, kMaxSlope);
      namespace F = torch::nn::functional;
      const torch::Tensor pixels = source.images[item.source].to(torch::kFloat32).div_(255.0f);
      item.texture = F::interpolate(pixels.unsqueeze(0).unsqueeze(0),
                                    F::InterpolateFuncOptions()
                                        .size(std::vector<int64_t>{item.side, item.side})
                                        .mode(torch::kBilinear)
                                        .align_corners(false))
                         .reshape({item.side, item.side})
                         .contiguous();
      drawn[static_cast<std::size_t>(j)].push_back(std::move(item));
    }
    // Far to near: nearer items paint over farther ones.
    std::stable_sort(drawn[j].begin(), drawn[j].end(),
                     [](const Item& a, const Item& b) { return a.depth > b.depth; });
  }

  Split split;
  split.inputs = torch::empty({count, 1, s, s});
  torch::Tensor classes = torch::full({count, s, s}, kBackground, torch::kInt64);
  torch::Tensor depth = torch::empty({count, 1, s, s});
  torch::Tensor normals = torch::empty({count, 3, s, s});
  float* image = split.inputs.data_ptr<float>();
  int64_t* cls = classes.data_ptr<int64_t>();
  float* dep = depth.data_ptr<float>();
  float* nor = normals.data_ptr<float>();
  /// Paints pixel p of image j: intensity, depth and normal (0 where `valid` is false).
  auto paint = [&](int64_t j, int64_t p, double intensity, double z, const Facet& facet,
                   bool valid) {
    image[j * plane + p] = static_cast<float>(intensity);
    dep[j * plane + p] = valid ? static_cast<float>(z) : 0.0f;
    for (int64_t a = 0; a < 3; ++a)
      nor[(j * 3 + a) * plane + p] = valid ? static_cast<float>(facet.normal[a]) : 0.0f;
  };
  at::parallel_for(0, count, 64, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      // The background: a plane at depth 4 through the canvas' centre, gently tilted.
      const auto [bx, by] = backgrounds[static_cast<std::size_t>(j)];
      const Facet ground(bx, by);
      const double middle = static_cast<double>(s - 1) / 2.0;
      for (int64_t r = 0; r < s; ++r) {
        for (int64_t c = 0; c < s; ++c) {
          const double z = kBackgroundDepth + kPixelPitch * (bx * (c - middle) + by * (r - middle));
          paint(j, r * s + c, kBackgroundAlbedo * ground.shade, z, ground, true);
        }
      }
      for (const Item& item : drawn[static_cast<std::size_t>(j)]) {
        const Facet facet(item.slopeX, item.slopeY);
        const float* texture = item.texture.data_ptr<float>();
        const double centre = static_cast<double>(item.side - 1) / 2.0;
        for (int64_t r = 0; r < item.side; ++r) {
          for (int64_t c = 0; c < item.side; ++c) {
            const float t = texture[r * item.side + c];
            if (t <= kRimThreshold) continue;
            const int64_t p = (item.top + r) * s + item.left + c;
            const bool inside = t >= kItemThreshold;
            cls[j * plane + p] = inside ? labels[item.source] : kMissingClass;
            const double z = item.depth + kPixelPitch * (item.slopeX * (c - centre) +
                                                         item.slopeY * (r - centre));
            paint(j, p, t * facet.shade, z, facet, inside);
          }
        }
      }
    }
  });
  split.targets = {classes, depth, normals};
  return split;
}

DenseFashionOptions readOptions(const ConfigNode& node) {
  DenseFashionOptions o;
  constexpr int64_t kMaxExamples = 10'000'000;
  o.directory = node.getString("directory", o.directory);
  o.size = node.getInt("size", o.size, 16, 256);
  o.items = node.getInt("items", o.items, 1, 6);
  o.minSide = node.getInt("min_side", o.minSide, 4, 256);
  o.maxSide = node.getInt("max_side", o.maxSide, 4, 256);
  if (o.minSide > o.maxSide)
    node.fail("min_side", fmt::format("{} is above max_side {}", o.minSide, o.maxSide));
  if (o.maxSide > o.size)
    node.fail("max_side", fmt::format("{} is above the canvas size {}", o.maxSide, o.size));
  o.trainSize = node.getInt("train_size", o.trainSize, 1, kMaxExamples);
  o.valSize = node.getInt("val_size", o.valSize, 1, kMaxExamples);
  o.testSize = node.getInt("test_size", o.testSize, 1, kMaxExamples);
  o.valFraction = node.getDouble("val_fraction", o.valFraction, 0.001, 0.999);
  return o;
}

const std::vector<TaskSpec>& denseFashionTasks() {
  static const std::vector<TaskSpec> tasks = {
      {"segmentation", TaskKind::kSegmentation, kDenseFashionClasses},
      {"depth", TaskKind::kDepth, 1},
      {"normals", TaskKind::kNormals, 3}};
  return tasks;
}

}  // namespace

MultiTaskData makeDenseFashion(const DenseFashionOptions& options, uint64_t seed) {
  const Source train = loadSource(options.directory, "train");
  const Source test = loadSource(options.directory, "t10k");
  std::vector<int64_t> sources(static_cast<std::size_t>(train.images.size(0)));
  std::iota(sources.begin(), sources.end(), 0);
  Draws(seed, 1).shuffle(sources);
  const auto held = static_cast<std::ptrdiff_t>(
      std::llround(options.valFraction * static_cast<double>(sources.size())));
  const std::vector<int64_t> valPool(sources.begin(), sources.begin() + held);
  const std::vector<int64_t> trainPool(sources.begin() + held, sources.end());
  std::vector<int64_t> testPool(static_cast<std::size_t>(test.images.size(0)));
  std::iota(testPool.begin(), testPool.end(), 0);
  if (valPool.empty() || trainPool.empty())
    throw DataError(hint("val_fraction leaves a split without source images"));
  MultiTaskData data;
  data.train = compose(train, trainPool, options.trainSize, options, seed, 2);
  data.val = compose(train, valPool, options.valSize, options, seed, 3);
  data.test = compose(test, testPool, options.testSize, options, seed, 4);
  data.tasks = denseFashionTasks();
  data.inputShape = {1, options.size, options.size};
  return data;
}

void registerDenseFashion() {
  DatasetInfo info;
  info.name = "dense_fashion";
  info.description =
      "offline dense benchmark: Fashion-MNIST items on a canvas, with segmentation, depth and "
      "normals per pixel";
  info.tasks = [](const ConfigNode& node, const std::vector<TaskSpec>& declared,
                  const DatasetContext&) {
    readOptions(node);
    const std::vector<TaskSpec>& own = denseFashionTasks();
    if (declared.empty()) return own;
    bool same = declared.size() == own.size();
    for (std::size_t t = 0; same && t < own.size(); ++t)
      same = declared[t].kind == own[t].kind && declared[t].outputs == own[t].outputs;
    if (!same) {
      node.fail("kind",
                "dense_fashion defines three tasks, in this order: segmentation (outputs 11), "
                "depth and normals; leave out `tasks:` or list them so (names may change)");
    }
    return declared;
  };
  info.load = [](const ConfigNode& node, const std::vector<TaskSpec>&,
                 const DatasetContext& context) {
    return makeDenseFashion(readOptions(node), context.seed);
  };
  registerDataset(std::move(info));
}

}  // namespace fulcrum
