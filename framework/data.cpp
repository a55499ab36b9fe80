// In-memory multi-task datasets: the GradNorm regression toy and Multi-Fashion.
#include "framework/data.h"

#include <fmt/format.h>
#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "framework/regular_file.h"

namespace fulcrum {

Split Split::rows(const torch::Tensor& index) const {
  Split out;
  out.inputs = inputs.index_select(0, index);
  for (const auto& target : targets) out.targets.push_back(target.index_select(0, index));
  return out;
}

namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// Random numbers
//
// std::uniform_*_distribution, std::normal_distribution and std::shuffle are
// implementation-defined, so the same seed would give different data with
// another standard library. Every draw here is built directly on the output of
// std::mt19937_64, whose sequence the standard fixes, and nothing touches the
// global torch generator, so the data depend on the seed alone (not on
// torch::manual_seed, on the thread count, or on the compiler's library).

uint64_t splitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

constexpr double kTwoPi = 6.283185307179586476925286766559;

class Rng {
 public:
  // Independent streams of one seed feed independent parts of a dataset, so
  // that e.g. changing the test size leaves the training split unchanged.
  Rng(uint64_t seed, uint64_t stream) : engine_(splitMix64(seed ^ splitMix64(stream))) {}

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  // Box–Muller; the second value of each pair is kept for the next call.
  double normal(double mean, double stddev) {
    if (hasSpare_) {
      hasSpare_ = false;
      return mean + stddev * spare_;
    }
    const double u1 = 1.0 - uniform();  // (0, 1]: log(u1) is finite
    const double u2 = uniform();
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = kTwoPi * u2;
    spare_ = radius * std::sin(angle);
    hasSpare_ = true;
    return mean + stddev * radius * std::cos(angle);
  }

  // Uniform in [0, n) for n >= 1, unbiased: draws below 2^64 mod n are
  // rejected so that the accepted range is a multiple of n.
  uint64_t below(uint64_t n) {
    const uint64_t threshold = (0 - n) % n;
    for (;;) {
      const uint64_t r = engine_();
      if (r >= threshold) return r % n;
    }
  }

  // Fisher–Yates.
  template <typename T>
  void shuffle(std::vector<T>& values) {
    for (size_t i = values.size(); i > 1; --i) {
      std::swap(values[i - 1], values[below(i)]);
    }
  }

 private:
  std::mt19937_64 engine_;
  bool hasSpare_ = false;
  double spare_ = 0.0;
};

// Streams of one seed, one per independent part of a dataset.
constexpr uint64_t kStreamMatrices = 0;  // GradNorm toy: B, then ε_0 … ε_{T-1}, each row-major
constexpr uint64_t kStreamSigmas = 1;    // GradNorm toy: σ_0 … σ_{T-1} when drawn
constexpr uint64_t kStreamTrain = 2;     // GradNorm toy: the inputs of each split
constexpr uint64_t kStreamVal = 3;
constexpr uint64_t kStreamTest = 4;
constexpr uint64_t kStreamPools = 10;         // Multi-Fashion: the train / validation partition
constexpr uint64_t kStreamFashionTrain = 11;  // Multi-Fashion: the composites of each split
constexpr uint64_t kStreamFashionVal = 12;
constexpr uint64_t kStreamFashionTest = 13;

// ---------------------------------------------------------------------------
// IDX files

constexpr const char* kFashionDirectory = "/usr/share/datasets/fashion-mnist";
constexpr const char* kFashionPackage = "dataset-fashion-mnist";

std::string hexByte(unsigned value) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%02X", value & 0xFFu);
  return text;
}

bool isUnder(const std::string& path, const std::string& directory) {
  const std::string normal = fs::path(path).lexically_normal().string();
  const std::string prefix = fs::path(directory).lexically_normal().string() + "/";
  return normal.compare(0, prefix.size(), prefix) == 0;
}

class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      std::string message = path + ": file not found";
      if (isUnder(path, kFashionDirectory)) {
        message += std::string("; install the Debian package ") + kFashionPackage;
      }
      throw DataError(message);
    }
    if (const std::string kind = nonRegularKind(path); !kind.empty()) {
      throw DataError(path + ": is " + kind + ", not a file");
    }
    errno = 0;
    file_ = gzopen(path.c_str(), "rb");
    if (file_ == nullptr) {
      throw DataError(path +
                      ": cannot open: " + (errno != 0 ? std::strerror(errno) : "out of memory"));
    }
    // Fewer, larger reads than with zlib's 8 KiB default buffer.
    gzbuffer(file_, 1 << 18);
  }
  ~GzReader() {
    if (file_ != nullptr) gzclose(file_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to `count` bytes and returns how many were read; fewer means the
  // (possibly truncated) stream ended.
  int64_t read(void* destination, int64_t count) {
    auto* out = static_cast<unsigned char*>(destination);
    int64_t got = 0;
    while (got < count) {
      const auto chunk = static_cast<unsigned>(std::min<int64_t>(count - got, int64_t{1} << 30));
      const int n = gzread(file_, out + got, chunk);
      if (n < 0) {
        int code = 0;
        const char* message = gzerror(file_, &code);
        throw DataError(path_ + ": cannot decompress: " + (message != nullptr ? message : "?"));
      }
      if (n == 0) break;
      got += n;
    }
    return got;
  }

 private:
  std::string path_;
  gzFile file_ = nullptr;
};

// ---------------------------------------------------------------------------
// Multi-Fashion

constexpr int64_t kItemSide = 28;
constexpr int64_t kCanvasSide = 36;
constexpr int64_t kMaxOffset = kCanvasSide - kItemSide;  // 8: the bottom-right nominal offset
constexpr int64_t kClasses = 10;
constexpr int64_t kMaxShiftLimit = 4;

/// Images and labels of one Fashion-MNIST file pair, read whole.
struct FashionSource {
  torch::Tensor images;  ///< N × 28 × 28 uint8
  torch::Tensor labels;  ///< N uint8 in 0..9
  int64_t size() const { return images.size(0); }
};

std::string withPackageHint(const std::string& message) {
  return message + " (Multi-Fashion reads the Fashion-MNIST IDX files of the Debian package " +
         kFashionPackage + ", installed in " + kFashionDirectory + ")";
}

torch::Tensor readFashionFile(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw DataError("multi_fashion: " + path + ": file not found; install the Debian package " +
                    kFashionPackage + " (files in " + kFashionDirectory +
                    ") or set `directory` to a folder holding the Fashion-MNIST IDX .gz files");
  }
  try {
    return readIdxGz(path);
  } catch (const DataError& error) {
    throw DataError(withPackageHint("multi_fashion: " + std::string(error.what())));
  }
}

FashionSource loadFashion(const std::string& directory, const std::string& prefix) {
  const std::string imagesPath =
      (fs::path(directory) / (prefix + "-images-idx3-ubyte.gz")).string();
  const std::string labelsPath =
      (fs::path(directory) / (prefix + "-labels-idx1-ubyte.gz")).string();
  FashionSource source{readFashionFile(imagesPath), readFashionFile(labelsPath)};
  const auto& images = source.images;
  if (images.dim() != 3 || images.size(1) != kItemSide || images.size(2) != kItemSide) {
    throw DataError(withPackageHint("multi_fashion: " + imagesPath +
                                    ": expected N × 28 × 28 images, got shape " +
                                    c10::str(images.sizes())));
  }
  if (source.labels.dim() != 1 || source.labels.size(0) != images.size(0)) {
    throw DataError(withPackageHint("multi_fashion: " + labelsPath + ": expected " +
                                    std::to_string(images.size(0)) + " labels to match " +
                                    imagesPath + ", got shape " + c10::str(source.labels.sizes())));
  }
  const uint8_t* labels = source.labels.data_ptr<uint8_t>();
  for (int64_t i = 0; i < source.labels.size(0); ++i) {
    if (labels[i] >= kClasses) {
      throw DataError(withPackageHint("multi_fashion: " + labelsPath + ": label " +
                                      std::to_string(labels[i]) + " at index " + std::to_string(i) +
                                      " is not in 0..9"));
    }
  }
  return source;
}

/// Source items available to one split, grouped by class for drawing the
/// second item of a composite.
struct Pool {
  std::vector<int64_t> items;
  std::array<std::vector<int64_t>, kClasses> byClass;
};

Pool makePool(std::vector<int64_t> items, const uint8_t* labels) {
  Pool pool;
  for (int64_t item : items) pool.byClass[labels[item]].push_back(item);
  pool.items = std::move(items);
  return pool;
}

int64_t countClasses(const Pool& pool) {
  return std::count_if(pool.byClass.begin(), pool.byClass.end(),
                       [](const std::vector<int64_t>& members) { return !members.empty(); });
}

/// Builds `count` composites from `pool`.
///
/// The first item cycles through a seeded permutation of the pool (so each
/// source is the first item about count / |pool| times); the second is drawn
/// uniformly among the pool items of a different class. Each item gets its own
/// shift (dy, dx), each uniform in [-maxShift, maxShift]; the offsets 0 + shift
/// (top-left) and 8 + shift (bottom-right) are clamped to [0, 8] so that the
/// item stays whole on the 36×36 canvas: in effect the top-left item only moves
/// right/down and the bottom-right item only left/up, with an offset of exactly
/// 0 (resp. 8) for every non-positive (resp. non-negative) shift.
Split composeSplit(const FashionSource& source, const Pool& pool, int64_t count, int64_t maxShift,
                   Rng& rng) {
  const uint8_t* images = source.images.data_ptr<uint8_t>();
  const uint8_t* labels = source.labels.data_ptr<uint8_t>();

  // All random draws first, in one sequential stream (so the result does not
  // depend on the thread count): per composite the second item, then the
  // shifts dy1, dx1, dy2, dx2.
  struct Placement {
    int64_t item, top, left;
  };
  std::vector<std::array<Placement, 2>> placements(static_cast<size_t>(count));
  {
    std::vector<int64_t> order = pool.items;
    rng.shuffle(order);
    const auto poolSize = static_cast<int64_t>(order.size());
    const auto drawOffset = [&](int64_t nominal) {
      const auto shift =
          static_cast<int64_t>(rng.below(static_cast<uint64_t>(2 * maxShift + 1))) - maxShift;
      return std::clamp<int64_t>(nominal + shift, 0, kMaxOffset);
    };
    for (int64_t j = 0; j < count; ++j) {
      const int64_t first = order[j % poolSize];
      const uint8_t firstClass = labels[first];
      // Uniform over the items of the other classes: index into their
      // concatenation, class by class.
      uint64_t pick = rng.below(static_cast<uint64_t>(poolSize) - pool.byClass[firstClass].size());
      int64_t second = -1;
      for (int64_t c = 0; c < kClasses && second < 0; ++c) {
        const auto& members = pool.byClass[c];
        if (c == firstClass) continue;
        if (pick < members.size()) {
          second = members[pick];
        } else {
          pick -= members.size();
        }
      }
      const int64_t top1 = drawOffset(0), left1 = drawOffset(0);
      const int64_t top2 = drawOffset(kMaxOffset), left2 = drawOffset(kMaxOffset);
      placements[j] = {Placement{first, top1, left1}, Placement{second, top2, left2}};
    }
  }

  Split split;
  split.inputs = torch::empty({count, 1, kCanvasSide, kCanvasSide}, torch::kFloat32);
  torch::Tensor topLeft = torch::empty({count}, torch::kInt64);
  torch::Tensor bottomRight = torch::empty({count}, torch::kInt64);
  float* canvases = split.inputs.data_ptr<float>();
  int64_t* topLeftLabels = topLeft.data_ptr<int64_t>();
  int64_t* bottomRightLabels = bottomRight.data_ptr<int64_t>();

  std::array<float, 256> intensity;
  for (int value = 0; value < 256; ++value) intensity[value] = static_cast<float>(value) / 255.0f;
  constexpr int64_t kItemPixels = kItemSide * kItemSide;
  constexpr int64_t kCanvasPixels = kCanvasSide * kCanvasSide;
  at::parallel_for(0, count, 256, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      float* canvas = canvases + j * kCanvasPixels;
      std::fill(canvas, canvas + kCanvasPixels, 0.0f);
      // Pixel max, so the order of painting does not matter.
      for (const Placement& placement : placements[j]) {
        const uint8_t* pixels = images + placement.item * kItemPixels;
        for (int64_t row = 0; row < kItemSide; ++row) {
          float* out = canvas + (placement.top + row) * kCanvasSide + placement.left;
          const uint8_t* in = pixels + row * kItemSide;
          for (int64_t col = 0; col < kItemSide; ++col)
            out[col] = std::max(out[col], intensity[in[col]]);
        }
      }
      topLeftLabels[j] = labels[placements[j][0].item];
      bottomRightLabels[j] = labels[placements[j][1].item];
    }
  });
  split.targets = {topLeft, bottomRight};
  return split;
}

// ---------------------------------------------------------------------------
// Option checks

void requireAtLeastOne(const char* where, const char* option, int64_t value) {
  if (value < 1) {
    throw DataError(std::string(where) + ": " + option + " = " + std::to_string(value) +
                    " must be >= 1");
  }
}

std::string formatDouble(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

void validate(const GradNormToyOptions& options) {
  const char* where = "gradnorm_toy";
  requireAtLeastOne(where, "tasks", options.tasks);
  requireAtLeastOne(where, "inputDim", options.inputDim);
  requireAtLeastOne(where, "outputDim", options.outputDim);
  requireAtLeastOne(where, "trainSize", options.trainSize);
  requireAtLeastOne(where, "valSize", options.valSize);
  requireAtLeastOne(where, "testSize", options.testSize);
  if (!options.sigmas.empty() && static_cast<int64_t>(options.sigmas.size()) != options.tasks) {
    throw DataError(std::string(where) + ": sigmas has " + std::to_string(options.sigmas.size()) +
                    " entries but tasks = " + std::to_string(options.tasks) +
                    " (give one σ per task, or none to draw them)");
  }
  for (size_t i = 0; i < options.sigmas.size(); ++i) {
    if (!std::isfinite(options.sigmas[i]) || options.sigmas[i] <= 0.0) {
      throw DataError(std::string(where) + ": sigmas[" + std::to_string(i) +
                      "] = " + formatDouble(options.sigmas[i]) + " must be finite and > 0");
    }
  }
  if (!std::isfinite(options.maxSigma) || options.maxSigma <= 1.0) {
    throw DataError(std::string(where) + ": maxSigma = " + formatDouble(options.maxSigma) +
                    " must be finite and > 1");
  }
  if (!std::isfinite(options.bStd) || options.bStd < 0.0) {
    throw DataError(std::string(where) + ": bStd = " + formatDouble(options.bStd) +
                    " must be finite and >= 0");
  }
  if (!std::isfinite(options.epsStd) || options.epsStd < 0.0) {
    throw DataError(std::string(where) + ": epsStd = " + formatDouble(options.epsStd) +
                    " must be finite and >= 0");
  }
}

void validate(const MultiFashionOptions& options) {
  const char* where = "multi_fashion";
  requireAtLeastOne(where, "trainSize", options.trainSize);
  requireAtLeastOne(where, "valSize", options.valSize);
  requireAtLeastOne(where, "testSize", options.testSize);
  if (!(options.valFraction > 0.0 && options.valFraction < 1.0)) {
    throw DataError(std::string(where) + ": valFraction = " + formatDouble(options.valFraction) +
                    " must be in (0, 1)");
  }
  if (options.maxShift < 0 || options.maxShift > kMaxShiftLimit) {
    throw DataError(std::string(where) + ": maxShift = " + std::to_string(options.maxShift) +
                    " must be in 0..4 (the canvas leaves 8 pixels of room)");
  }
  if (options.directory.empty()) throw DataError(std::string(where) + ": directory is empty");
}

// ---------------------------------------------------------------------------
// GradNorm toy

/// The toy's fixed functions: W_i = B + ε_i stored transposed (inputDim ×
/// outputDim) in double, and σ_i.
struct ToyFunctions {
  std::vector<std::vector<double>> weightsT;
  std::vector<double> sigmas;
};

/// Inputs x uniform in [-1, 1]^d scaled to unit L2 norm, and targets
/// y_i = σ_i tanh(W_i x), computed in double from the stored float32 x so
/// that inputs and targets agree exactly.
///
/// The paper says only "uniform, normalised". With unit-norm x each entry of
/// (B + ε_i) x is N(0, bStd² + epsStd²) whatever inputDim is (std ≈ 10.6 for
/// the paper's values: most outputs near ±σ_i, some on the slope of the
/// tanh); un-normalised U(0, 1)^250 inputs would saturate nearly all of them.
Split makeToySplit(const GradNormToyOptions& options, const ToyFunctions& functions, int64_t count,
                   Rng& rng) {
  const int64_t inDim = options.inputDim;
  const int64_t outDim = options.outputDim;
  Split split;
  split.inputs = torch::empty({count, inDim}, torch::kFloat32);
  float* inputs = split.inputs.data_ptr<float>();
  std::vector<double> row(static_cast<size_t>(inDim));
  for (int64_t n = 0; n < count; ++n) {
    double squaredNorm = 0.0;
    while (squaredNorm == 0.0) {  // all-zero draws: probability ~0, but x/|x| must exist
      for (auto& value : row) {
        value = rng.uniform(-1.0, 1.0);
        squaredNorm += value * value;
      }
    }
    const double scale = 1.0 / std::sqrt(squaredNorm);
    for (int64_t k = 0; k < inDim; ++k) inputs[n * inDim + k] = static_cast<float>(row[k] * scale);
  }

  for (size_t task = 0; task < functions.weightsT.size(); ++task) {
    torch::Tensor targets = torch::empty({count, outDim}, torch::kFloat32);
    float* out = targets.data_ptr<float>();
    const double* weightsT = functions.weightsT[task].data();
    const double sigma = functions.sigmas[task];
    // Each output is summed over k in a fixed order by one thread, so the
    // result does not depend on the thread count (unlike a BLAS matmul).
    // Blocks of examples share each pass over W, which lives in L2.
    constexpr int64_t kBlock = 16;
    at::parallel_for(0, count, kBlock, [&](int64_t begin, int64_t end) {
      std::vector<double> accumulator(static_cast<size_t>(kBlock * outDim));
      for (int64_t first = begin; first < end; first += kBlock) {
        const int64_t rows = std::min(kBlock, end - first);
        std::fill(accumulator.begin(), accumulator.end(), 0.0);
        for (int64_t k = 0; k < inDim; ++k) {
          const double* w = weightsT + k * outDim;
          for (int64_t r = 0; r < rows; ++r) {
            const double x = inputs[(first + r) * inDim + k];
            double* sum = accumulator.data() + r * outDim;
            for (int64_t o = 0; o < outDim; ++o) sum[o] += x * w[o];
          }
        }
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t o = 0; o < outDim; ++o) {
            out[(first + r) * outDim + o] =
                static_cast<float>(sigma * std::tanh(accumulator[r * outDim + o]));
          }
        }
      }
    });
    split.targets.push_back(targets);
  }
  return split;
}

}  // namespace

// ---------------------------------------------------------------------------

namespace {

const char* splitName(int index) {
  return index == 0 ? "training" : index == 1 ? "validation" : "test";
}

std::string shapeOf(const torch::Tensor& tensor) {
  std::string text;
  for (int64_t d : tensor.sizes()) text += (text.empty() ? "" : " × ") + std::to_string(d);
  return text.empty() ? "a scalar" : text;
}

/// "example 3, pixel (y 5, x 7)" of the flat index `at` into a tensor of `sizes` (N × [C ×] H × W).
std::string pixelOf(int64_t at, c10::IntArrayRef sizes) {
  const int64_t width = sizes.back(), plane = sizes[sizes.size() - 2] * width;
  int64_t example = 1;
  for (std::size_t d = 1; d < sizes.size(); ++d) example *= sizes[d];
  const int64_t row = at / example;
  int64_t rest = at % example;
  const int64_t channel = rest / plane;
  rest %= plane;
  return sizes.size() == 4 && sizes[1] > 1
             ? fmt::format("example {}, channel {}, pixel (y {}, x {})", row, channel, rest / width,
                           rest % width)
             : fmt::format("example {}, pixel (y {}, x {})", row, rest / width, rest % width);
}

/// A dense task's target made N × H × W (segmentation, int64) or
/// N × outputs × H × W (float32), of the inputs' H × W, with every value
/// checked: classes in [0, outputs) or −1 (ignored), finite depths and normals.
torch::Tensor conformDense(const torch::Tensor& target, const TaskSpec& task,
                           const torch::Tensor& inputs, std::size_t t, const char* split) {
  const bool classes = task.kind == TaskKind::kSegmentation;
  auto fail = [&](const std::string& what) {
    throw TargetShapeError(t, fmt::format("the target of task '{}' ({}) in the {} split {}",
                                          task.name, toString(task.kind), split, what));
  };
  if (!inputs.defined() || inputs.dim() != 4) {
    fail(
        fmt::format("is per pixel, but the inputs are {}: a dense task needs images "
                    "N × C × H × W",
                    inputs.defined() ? shapeOf(inputs) : "missing"));
  }
  const int64_t n = inputs.size(0), height = inputs.size(2), width = inputs.size(3);
  torch::Tensor y = target;
  if (classes && y.dim() == 4 && y.size(1) == 1) y = y.squeeze(1);
  if (!classes && task.outputs == 1 && y.dim() == 3) y = y.unsqueeze(1);
  const std::vector<int64_t> expected = classes
                                            ? std::vector<int64_t>{n, height, width}
                                            : std::vector<int64_t>{n, task.outputs, height, width};
  if (y.sizes().vec() != expected) {
    fail(fmt::format("is {}; expected {} (the inputs' height and width)", shapeOf(target),
                     fmt::join(expected, " × ")));
  }
  if (classes) {
    if (y.is_floating_point()) {
      const torch::Tensor whole = y.isfinite().logical_and(y.eq(y.floor()));
      if (!whole.all().item<bool>()) {
        const int64_t at = whole.logical_not().flatten().nonzero()[0].item<int64_t>();
        fail(fmt::format("holds {} at {}: class labels are whole numbers",
                         y.flatten()[at].item<double>(), pixelOf(at, y.sizes())));
      }
    }
    y = y.to(torch::kInt64).contiguous();
    const torch::Tensor bad = y.lt(kMissingClass).logical_or(y.ge(task.outputs));
    if (bad.any().item<bool>()) {
      const int64_t at = bad.flatten().nonzero()[0].item<int64_t>();
      fail(
          fmt::format("holds class {} at {}: labels are 0..{} (outputs {}), or {} for an "
                      "ignored pixel",
                      y.flatten()[at].item<int64_t>(), pixelOf(at, y.sizes()), task.outputs - 1,
                      task.outputs, kMissingClass));
    }
    return y;
  }
  y = y.to(torch::kFloat32).contiguous();
  const torch::Tensor bad = y.isfinite().logical_not();
  if (bad.any().item<bool>()) {
    const int64_t at = bad.flatten().nonzero()[0].item<int64_t>();
    fail(
        fmt::format("holds {} at {}: a missing {} value is 0 (a pixel whose {} 0), not "
                    "NaN or infinity",
                    y.flatten()[at].item<double>(), pixelOf(at, y.sizes()), toString(task.kind),
                    task.kind == TaskKind::kDepth ? "depth is" : "components sum to"));
  }
  return y;
}

}  // namespace

void conformTargets(MultiTaskData& data, const std::vector<TaskSpec>& tasks) {
  Split* splits[3] = {&data.train, &data.val, &data.test};
  for (int s = 0; s < 3; ++s) {
    Split& split = *splits[s];
    if (split.targets.size() != tasks.size()) {
      throw DataError(fmt::format("the {} split has {} targets for {} tasks", splitName(s),
                                  split.targets.size(), tasks.size()));
    }
    for (std::size_t t = 0; t < tasks.size(); ++t) {
      torch::Tensor& y = split.targets[t];
      const TaskSpec& task = tasks[t];
      if (taskKindInfo(task.kind).dense) {
        y = conformDense(y, task, split.inputs, t, splitName(s));
        continue;
      }
      const bool regression = task.kind == TaskKind::kRegression;
      const bool vector = y.dim() == 1;
      const bool column = y.dim() == 2 && y.size(1) == 1;
      if (regression && vector && task.outputs == 1) {
        y = y.reshape({y.size(0), 1});
      } else if (regression && y.dim() == 2 && y.size(1) == task.outputs) {
        // Already N × outputs.
      } else if (!regression && (vector || column)) {
        if (column) y = y.reshape({y.size(0)});
      } else {
        const std::string expected =
            regression ? fmt::format("N × {}{}", task.outputs, task.outputs == 1 ? " (or N)" : "")
                       : std::string("N (or N × 1)");
        throw TargetShapeError(
            t, fmt::format("the target of task '{}' ({}, outputs {}) in the {} split is {}; "
                           "expected {}",
                           task.name, toString(task.kind), task.outputs, splitName(s), shapeOf(y),
                           expected));
      }
    }
  }
}

void checkSplitShapes(const MultiTaskData& data) {
  const Split* splits[3] = {&data.train, &data.val, &data.test};
  const std::vector<int64_t>& shape = data.inputShape;
  for (int s = 0; s < 3; ++s) {
    const Split& split = *splits[s];
    if (!split.inputs.defined()) {
      throw SplitShapeError(DataPart::kWhole,
                            fmt::format("the {} split has no inputs", splitName(s)));
    }
    const torch::Tensor& x = split.inputs;
    if (x.dim() < 2) {
      throw SplitShapeError(
          DataPart::kInputs,
          fmt::format("the inputs of the {} split are {}: expected one row of features per example "
                      "(N × F, or N × C × H × W; one feature is N × 1)",
                      splitName(s), shapeOf(x)));
    }
    for (int64_t d = 1; d < x.dim(); ++d) {
      if (x.size(d) == 0) {
        throw SplitShapeError(DataPart::kInputs,
                              fmt::format("the inputs of the {} split are {}: an example has no "
                                          "values (dimension {} is 0)",
                                          splitName(s), shapeOf(x), d));
      }
    }
    const std::vector<int64_t> own(x.sizes().begin() + 1, x.sizes().end());
    if (own != shape) {
      throw SplitShapeError(
          DataPart::kInputs,
          fmt::format(
              "the inputs of the {} split are {}: one example is {}, but the model is built "
              "for the training split's examples, {}",
              splitName(s), shapeOf(x), fmt::join(own, " × "), fmt::join(shape, " × ")));
    }
    if (s == 0 && x.size(0) == 0) {
      throw SplitShapeError(DataPart::kWhole, "the training split is empty: no rows to train on");
    }
    for (std::size_t t = 0; t < split.targets.size(); ++t) {
      const torch::Tensor& y = split.targets[t];
      if (y.dim() < 1 || y.size(0) != x.size(0)) {
        const std::string task =
            t < data.tasks.size() ? "'" + data.tasks[t].name + "'" : std::to_string(t);
        throw SplitShapeError(DataPart::kTargets,
                              fmt::format("the {} split has {} input rows but the target of task "
                                          "{} is {}: one row per example in both",
                                          splitName(s), x.size(0), task, shapeOf(y)));
      }
    }
  }
}

torch::Tensor readIdxGz(const std::string& path) {
  GzReader reader(path);

  unsigned char magic[4];
  if (reader.read(magic, 4) < 4) throw DataError(path + ": truncated: too short for an IDX header");
  if (magic[0] != 0 || magic[1] != 0) {
    throw DataError(path + ": bad magic: expected an IDX file starting with two zero bytes, got " +
                    hexByte(magic[0]) + " " + hexByte(magic[1]));
  }
  const unsigned type = magic[2];
  switch (type) {
    case 0x08:
      break;
    case 0x09:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x0E:
      throw DataError(path + ": unsupported IDX element type " + hexByte(type) +
                      "; only 0x08 (unsigned byte) is supported");
    default:
      throw DataError(path + ": bad magic: unknown IDX element type " + hexByte(type));
  }
  const int dims = magic[3];
  if (dims == 0) throw DataError(path + ": IDX header declares 0 dimensions");

  std::vector<unsigned char> header(static_cast<size_t>(4 * dims));
  if (reader.read(header.data(), 4 * dims) < 4 * dims) {
    throw DataError(path + ": truncated: the header declares " + std::to_string(dims) +
                    " dimensions but ends early");
  }
  std::vector<int64_t> sizes(static_cast<size_t>(dims));
  int64_t total = 1;
  constexpr int64_t kMaxElements = int64_t{1} << 40;
  for (int d = 0; d < dims; ++d) {
    const unsigned char* b = header.data() + 4 * d;
    const uint32_t size =
        (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
    sizes[d] = size;
    if (size != 0 && total > kMaxElements / static_cast<int64_t>(size)) {
      throw DataError(path + ": implausible IDX dimensions (more than 2^40 elements)");
    }
    total *= size;
  }

  torch::Tensor data = torch::empty(sizes, torch::kUInt8);
  const int64_t got = reader.read(data.data_ptr<uint8_t>(), total);
  if (got < total) {
    throw DataError(path + ": truncated: the header declares " + c10::str(data.sizes()) + " = " +
                    std::to_string(total) + " bytes of data but the file holds " +
                    std::to_string(got));
  }
  return data;
}

MultiTaskData makeGradNormToy(const GradNormToyOptions& options, uint64_t seed) {
  validate(options);
  const auto tasks = static_cast<size_t>(options.tasks);
  const int64_t inDim = options.inputDim;
  const int64_t outDim = options.outputDim;

  ToyFunctions functions;
  {
    Rng rng(seed, kStreamMatrices);
    std::vector<double> b(static_cast<size_t>(outDim * inDim));
    for (auto& value : b) value = rng.normal(0.0, options.bStd);
    functions.weightsT.resize(tasks, std::vector<double>(b.size()));
    for (auto& weightsT : functions.weightsT) {
      for (int64_t o = 0; o < outDim; ++o) {
        for (int64_t k = 0; k < inDim; ++k) {
          weightsT[k * outDim + o] = b[o * inDim + k] + rng.normal(0.0, options.epsStd);
        }
      }
    }
  }
  if (options.sigmas.empty()) {
    Rng rng(seed, kStreamSigmas);
    for (size_t i = 0; i < tasks; ++i)
      functions.sigmas.push_back(rng.uniform(1.0, options.maxSigma));
  } else {
    functions.sigmas = options.sigmas;
  }

  MultiTaskData data;
  Rng trainRng(seed, kStreamTrain), valRng(seed, kStreamVal), testRng(seed, kStreamTest);
  data.train = makeToySplit(options, functions, options.trainSize, trainRng);
  data.val = makeToySplit(options, functions, options.valSize, valRng);
  data.test = makeToySplit(options, functions, options.testSize, testRng);
  for (size_t i = 0; i < tasks; ++i) {
    data.tasks.push_back({"task" + std::to_string(i), TaskKind::kRegression, outDim});
  }
  data.inputShape = {inDim};
  return data;
}

MultiTaskData makeMultiFashion(const MultiFashionOptions& options, uint64_t seed) {
  validate(options);
  std::error_code ec;
  if (!fs::is_directory(options.directory, ec)) {
    throw DataError(
        "multi_fashion: " + options.directory +
        (fs::exists(options.directory, ec) ? ": not a directory" : ": directory not found") +
        "; install the Debian package " + kFashionPackage + " (files in " + kFashionDirectory +
        ") or set `directory` to a folder holding the Fashion-MNIST IDX .gz files");
  }
  const FashionSource train = loadFashion(options.directory, "train");
  const FashionSource test = loadFashion(options.directory, "t10k");

  // Disjoint train / validation pools from one permutation of the training file.
  const int64_t sources = train.size();
  const auto valCount =
      static_cast<int64_t>(std::llround(options.valFraction * static_cast<double>(sources)));
  std::vector<int64_t> permutation(static_cast<size_t>(sources));
  for (int64_t i = 0; i < sources; ++i) permutation[i] = i;
  Rng poolRng(seed, kStreamPools);
  poolRng.shuffle(permutation);
  const uint8_t* trainLabels = train.labels.data_ptr<uint8_t>();
  Pool valPool = makePool({permutation.begin(), permutation.begin() + valCount}, trainLabels);
  Pool trainPool = makePool({permutation.begin() + valCount, permutation.end()}, trainLabels);
  for (const auto& [name, pool] : {std::pair<const char*, const Pool*>{"validation", &valPool},
                                   std::pair<const char*, const Pool*>{"training", &trainPool}}) {
    if (countClasses(*pool) < 2) {
      throw DataError(
          "multi_fashion: valFraction = " + formatDouble(options.valFraction) + " leaves the " +
          name + " pool " + std::to_string(pool->items.size()) + " of " + std::to_string(sources) +
          " source items, with fewer than two classes; composites need two different classes");
    }
  }
  std::vector<int64_t> testItems(static_cast<size_t>(test.size()));
  for (int64_t i = 0; i < test.size(); ++i) testItems[i] = i;
  Pool testPool = makePool(std::move(testItems), test.labels.data_ptr<uint8_t>());
  if (countClasses(testPool) < 2) {
    throw DataError(withPackageHint("multi_fashion: the t10k files in " + options.directory +
                                    " hold fewer than two classes"));
  }

  MultiTaskData data;
  Rng trainRng(seed, kStreamFashionTrain), valRng(seed, kStreamFashionVal),
      testRng(seed, kStreamFashionTest);
  data.train = composeSplit(train, trainPool, options.trainSize, options.maxShift, trainRng);
  data.val = composeSplit(train, valPool, options.valSize, options.maxShift, valRng);
  data.test = composeSplit(test, testPool, options.testSize, options.maxShift, testRng);
  data.tasks = {{"top_left", TaskKind::kClassification, kClasses},
                {"bottom_right", TaskKind::kClassification, kClasses}};
  data.inputShape = {1, kCanvasSide, kCanvasSide};
  return data;
}

}  // namespace fulcrum
