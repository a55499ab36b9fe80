// Tests of framework/data: IDX reading, Multi-Fashion and the GradNorm toy.
#include <torch/torch.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "framework/data.h"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using fulcrum::DataError;

namespace {

const std::string kFashionDir = "/usr/share/datasets/fashion-mnist";

/// A fresh, empty directory under the system temp directory.
fs::path scratchDirectory(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("fulcrum_test_data_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void writeGz(const fs::path& path, const std::vector<uint8_t>& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  REQUIRE(file != nullptr);
  if (!bytes.empty()) {
    REQUIRE(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  }
  REQUIRE(gzclose(file) == Z_OK);
}

/// IDX header: two zero bytes, the type, the number of dimensions, then each
/// size as a big-endian 32-bit integer.
std::vector<uint8_t> idxHeader(uint8_t type, const std::vector<uint32_t>& sizes) {
  std::vector<uint8_t> bytes = {0, 0, type, static_cast<uint8_t>(sizes.size())};
  for (uint32_t size : sizes) {
    bytes.push_back(static_cast<uint8_t>(size >> 24));
    bytes.push_back(static_cast<uint8_t>(size >> 16));
    bytes.push_back(static_cast<uint8_t>(size >> 8));
    bytes.push_back(static_cast<uint8_t>(size));
  }
  return bytes;
}

std::vector<uint8_t> concat(std::vector<uint8_t> head, const std::vector<uint8_t>& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

std::vector<uint8_t> ramp(size_t count) {
  std::vector<uint8_t> bytes(count);
  for (size_t i = 0; i < count; ++i) bytes[i] = static_cast<uint8_t>(i % 256);
  return bytes;
}

// --- Multi-Fashion helpers -------------------------------------------------

constexpr int64_t kSide = 28;
constexpr int64_t kCanvas = 36;

fulcrum::MultiFashionOptions smallFashion(int64_t maxShift = 4) {
  fulcrum::MultiFashionOptions options;
  options.directory = kFashionDir;
  options.trainSize = 200;
  options.valSize = 50;
  options.testSize = 50;
  options.maxShift = maxShift;
  return options;
}

/// Source images and labels, read once for all tests.
struct Sources {
  torch::Tensor images, labels;
};
const Sources& fashionSources(const std::string& prefix) {
  static std::map<std::string, Sources> cache;
  auto it = cache.find(prefix);
  if (it == cache.end()) {
    Sources sources{fulcrum::readIdxGz(kFashionDir + "/" + prefix + "-images-idx3-ubyte.gz"),
                    fulcrum::readIdxGz(kFashionDir + "/" + prefix + "-labels-idx1-ubyte.gz")};
    it = cache.emplace(prefix, sources).first;
  }
  return it->second;
}

float intensity(uint8_t value) { return static_cast<float>(value) / 255.0f; }

struct Rect {
  int64_t top, left;
  bool contains(int64_t row, int64_t col) const {
    return row >= top && row < top + kSide && col >= left && col < left + kSide;
  }
};

/// Source items of class `label` that match `canvas` exactly on the pixels of
/// `self` that `other` does not cover (where only this item can show).
std::vector<int64_t> matchingItems(const float* canvas, const Sources& sources, int64_t label, Rect self,
                                   Rect other) {
  const uint8_t* images = sources.images.data_ptr<uint8_t>();
  const uint8_t* labels = sources.labels.data_ptr<uint8_t>();
  std::vector<int64_t> matches;
  for (int64_t item = 0; item < sources.labels.size(0); ++item) {
    if (labels[item] != label) continue;
    const uint8_t* pixels = images + item * kSide * kSide;
    bool same = true;
    for (int64_t r = 0; r < kSide && same; ++r) {
      for (int64_t c = 0; c < kSide && same; ++c) {
        const int64_t row = self.top + r, col = self.left + c;
        if (other.contains(row, col)) continue;
        same = canvas[row * kCanvas + col] == intensity(pixels[r * kSide + c]);
      }
    }
    if (same) matches.push_back(item);
  }
  return matches;
}

/// True if `canvas` is exactly the pixel max of item `a` at `ra` and item `b` at `rb` on a zero canvas.
bool isPixelMax(const float* canvas, const Sources& sources, int64_t a, Rect ra, int64_t b, Rect rb) {
  const uint8_t* images = sources.images.data_ptr<uint8_t>();
  for (int64_t row = 0; row < kCanvas; ++row) {
    for (int64_t col = 0; col < kCanvas; ++col) {
      float expected = 0.0f;
      if (ra.contains(row, col)) {
        expected = std::max(expected, intensity(images[a * kSide * kSide + (row - ra.top) * kSide + col - ra.left]));
      }
      if (rb.contains(row, col)) {
        expected = std::max(expected, intensity(images[b * kSide * kSide + (row - rb.top) * kSide + col - rb.left]));
      }
      if (canvas[row * kCanvas + col] != expected) return false;
    }
  }
  return true;
}

/// With maxShift 0 (item 1 at (0,0), item 2 at (8,8)): finds each composite's
/// two source items in `sources`, requires the canvas to be their pixel max,
/// and returns the items identified without ambiguity.
std::set<int64_t> reconstructUnshifted(const fulcrum::Split& split, const Sources& sources) {
  const Rect topLeft{0, 0}, bottomRight{8, 8};
  const torch::Tensor inputs = split.inputs.contiguous();
  const float* canvases = inputs.data_ptr<float>();
  std::set<int64_t> unique;
  for (int64_t j = 0; j < split.size(); ++j) {
    const float* canvas = canvases + j * kCanvas * kCanvas;
    const int64_t label1 = split.targets[0][j].item<int64_t>();
    const int64_t label2 = split.targets[1][j].item<int64_t>();
    const auto first = matchingItems(canvas, sources, label1, topLeft, bottomRight);
    const auto second = matchingItems(canvas, sources, label2, bottomRight, topLeft);
    INFO("composite " << j << ": " << first.size() << " candidates for item 1, " << second.size()
                      << " for item 2");
    REQUIRE(!first.empty());
    REQUIRE(!second.empty());
    bool reproduced = false;
    for (size_t a = 0; a < std::min<size_t>(first.size(), 20) && !reproduced; ++a) {
      for (size_t b = 0; b < std::min<size_t>(second.size(), 20) && !reproduced; ++b) {
        reproduced = isPixelMax(canvas, sources, first[a], topLeft, second[b], bottomRight);
      }
    }
    REQUIRE(reproduced);
    if (first.size() == 1) unique.insert(first[0]);
    if (second.size() == 1) unique.insert(second[0]);
  }
  return unique;
}

/// A stand-in for the Fashion-MNIST files in which item i is blank except for
/// pixel (0, 0) = firstValue + i, and has label i mod 10: each canvas then
/// shows where each of its two items went and which items they were.
void writeMarkerFashion(const fs::path& dir, const std::string& prefix, uint32_t count, uint32_t firstValue) {
  std::vector<uint8_t> pixels(count * kSide * kSide, 0);
  std::vector<uint8_t> labels(count);
  for (uint32_t i = 0; i < count; ++i) {
    pixels[i * kSide * kSide] = static_cast<uint8_t>(firstValue + i);
    labels[i] = static_cast<uint8_t>(i % 10);
  }
  writeGz(dir / (prefix + "-images-idx3-ubyte.gz"), concat(idxHeader(0x08, {count, 28, 28}), pixels));
  writeGz(dir / (prefix + "-labels-idx1-ubyte.gz"), concat(idxHeader(0x08, {count}), labels));
}

/// One item found on a marker canvas: its source index and canvas offset.
struct Marker {
  int64_t id, top, left;
};

/// Decodes each composite of a marker split into {item 1, item 2}, matching
/// the markers to the items by the labels (which always differ). With
/// maxShift 4 both markers can fall on pixel (4, 4) (probability 1/9^4); such
/// composites are skipped.
std::vector<std::array<Marker, 2>> decodeMarkers(const fulcrum::Split& split, int64_t firstValue, int64_t count) {
  std::vector<std::array<Marker, 2>> found;
  const torch::Tensor inputs = split.inputs.contiguous();
  for (int64_t j = 0; j < split.size(); ++j) {
    const float* canvas = inputs.data_ptr<float>() + j * kCanvas * kCanvas;
    std::vector<Marker> markers;
    for (int64_t row = 0; row < kCanvas; ++row) {
      for (int64_t col = 0; col < kCanvas; ++col) {
        const float value = canvas[row * kCanvas + col];
        if (value == 0.0f) continue;
        const auto byte = static_cast<int64_t>(std::lround(value * 255.0f));
        REQUIRE(value == intensity(static_cast<uint8_t>(byte)));
        const int64_t id = byte - firstValue;
        INFO("composite " << j << " shows pixel value " << byte << " at (" << row << ", " << col << ")");
        REQUIRE(id >= 0);
        REQUIRE(id < count);
        markers.push_back({id, row, col});
      }
    }
    if (markers.size() == 1) continue;
    REQUIRE(markers.size() == 2);
    const int64_t label1 = split.targets[0][j].item<int64_t>();
    const int64_t label2 = split.targets[1][j].item<int64_t>();
    if (markers[0].id % 10 != label1) std::swap(markers[0], markers[1]);
    REQUIRE(markers[0].id % 10 == label1);
    REQUIRE(markers[1].id % 10 == label2);
    found.push_back({markers[0], markers[1]});
  }
  REQUIRE(found.size() + 3 >= static_cast<size_t>(split.size()));
  return found;
}

void requireEqual(const fulcrum::Split& a, const fulcrum::Split& b) {
  REQUIRE(torch::equal(a.inputs, b.inputs));
  REQUIRE(a.targets.size() == b.targets.size());
  for (size_t i = 0; i < a.targets.size(); ++i) REQUIRE(torch::equal(a.targets[i], b.targets[i]));
}

// --- GradNorm toy helpers --------------------------------------------------

fulcrum::GradNormToyOptions smallToy() {
  fulcrum::GradNormToyOptions options;
  options.tasks = 2;
  options.sigmas = {1.0, 100.0};
  options.trainSize = 300;
  options.valSize = 20;
  options.testSize = 30;
  return options;
}

}  // namespace

// ===========================================================================
// IDX

TEST_CASE("readIdxGz reads a hand-written 3-D uint8 file", "[data][idx]") {
  const fs::path path = scratchDirectory("idx3") / "cube.gz";
  writeGz(path, concat(idxHeader(0x08, {2, 3, 4}), ramp(24)));

  const torch::Tensor data = fulcrum::readIdxGz(path.string());
  REQUIRE(data.scalar_type() == torch::kUInt8);
  REQUIRE(data.sizes() == torch::IntArrayRef({2, 3, 4}));
  // Row-major: element (i, j, k) is byte 12 i + 4 j + k of the data.
  CHECK(data[0][0][0].item<int>() == 0);
  CHECK(data[0][2][3].item<int>() == 11);
  CHECK(data[1][0][0].item<int>() == 12);
  CHECK(data[1][2][3].item<int>() == 23);
  fs::remove_all(path.parent_path());
}

TEST_CASE("readIdxGz decodes sizes as big-endian", "[data][idx]") {
  // 258 = 0x00000102: read as little-endian it would be 0x02010000 elements.
  const fs::path path = scratchDirectory("idx1") / "line.gz";
  writeGz(path, concat(idxHeader(0x08, {258}), ramp(258)));
  const torch::Tensor data = fulcrum::readIdxGz(path.string());
  REQUIRE(data.sizes() == torch::IntArrayRef({258}));
  CHECK(data[255].item<int>() == 255);
  CHECK(data[256].item<int>() == 0);
  CHECK(data[257].item<int>() == 1);
  fs::remove_all(path.parent_path());
}

TEST_CASE("readIdxGz rejects malformed files, naming the path", "[data][idx]") {
  const fs::path dir = scratchDirectory("idxbad");

  SECTION("fewer data bytes than the dimensions declare") {
    const std::string path = (dir / "short.gz").string();
    writeGz(path, concat(idxHeader(0x08, {2, 3, 4}), ramp(20)));
    REQUIRE_THROWS_AS(fulcrum::readIdxGz(path), DataError);
    REQUIRE_THROWS_WITH(fulcrum::readIdxGz(path), Contains(path) && Contains("truncated") && Contains("24 bytes") &&
                                                      Contains("holds 20"));
  }
  SECTION("a header that ends inside the sizes") {
    const std::string path = (dir / "header.gz").string();
    std::vector<uint8_t> bytes = idxHeader(0x08, {2, 3, 4});
    bytes.resize(9);
    writeGz(path, bytes);
    REQUIRE_THROWS_WITH(fulcrum::readIdxGz(path), Contains(path) && Contains("truncated"));
  }
  SECTION("a gzip stream cut in the middle") {
    const fs::path whole = dir / "whole.gz";
    writeGz(whole, concat(idxHeader(0x08, {100, 100}), ramp(10000)));
    std::ifstream in(whole, std::ios::binary);
    std::vector<char> compressed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string path = (dir / "cut.gz").string();
    std::ofstream(path, std::ios::binary).write(compressed.data(), static_cast<std::streamsize>(compressed.size() / 2));
    REQUIRE_THROWS_AS(fulcrum::readIdxGz(path), DataError);
    REQUIRE_THROWS_WITH(fulcrum::readIdxGz(path), Contains(path));
  }
  SECTION("non-zero magic bytes") {
    const std::string path = (dir / "magic.gz").string();
    std::vector<uint8_t> bytes = concat(idxHeader(0x08, {4}), ramp(4));
    bytes[0] = 0x1F;
    writeGz(path, bytes);
    REQUIRE_THROWS_WITH(fulcrum::readIdxGz(path), Contains(path) && Contains("bad magic") && Contains("0x1F"));
  }
  SECTION("an element type other than unsigned byte") {
    const std::string path = (dir / "float.gz").string();
    writeGz(path, concat(idxHeader(0x0D, {1}), ramp(4)));
    REQUIRE_THROWS_WITH(fulcrum::readIdxGz(path), Contains(path) && Contains("unsupported") && Contains("0x0D"));
  }
  SECTION("an empty file") {
    const std::string path = (dir / "empty.gz").string();
    writeGz(path, {});
    REQUIRE_THROWS_WITH(fulcrum::readIdxGz(path), Contains(path) && Contains("truncated"));
  }
  fs::remove_all(dir);
}

TEST_CASE("readIdxGz reports a missing file, with the package for packaged data", "[data][idx]") {
  const std::string elsewhere = (fs::temp_directory_path() / "fulcrum_no_such_dir" / "x.gz").string();
  REQUIRE_THROWS_AS(fulcrum::readIdxGz(elsewhere), DataError);
  REQUIRE_THROWS_WITH(fulcrum::readIdxGz(elsewhere), Contains(elsewhere) && Contains("file not found") &&
                                                         !Contains("dataset-fashion-mnist"));

  const std::string packaged = kFashionDir + "/no-such-file.gz";
  REQUIRE_THROWS_WITH(fulcrum::readIdxGz(packaged), Contains(packaged) && Contains("file not found") &&
                                                        Contains("dataset-fashion-mnist"));
}

TEST_CASE("readIdxGz reads the packaged Fashion-MNIST labels", "[data][idx]") {
  // Published facts of Fashion-MNIST: 10000 test items, 1000 per class, and
  // the first labels 9 2 1 1 6 1 4 6 5 7.
  const torch::Tensor labels = fulcrum::readIdxGz(kFashionDir + "/t10k-labels-idx1-ubyte.gz");
  REQUIRE(labels.sizes() == torch::IntArrayRef({10000}));
  const std::vector<int> first = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
  for (size_t i = 0; i < first.size(); ++i) CHECK(labels[static_cast<int64_t>(i)].item<int>() == first[i]);
  const torch::Tensor counts = torch::bincount(labels.to(torch::kInt64));
  REQUIRE(counts.size(0) == 10);
  CHECK(torch::all(counts == 1000).item<bool>());
}

// ===========================================================================
// Multi-Fashion

TEST_CASE("Multi-Fashion has the documented shapes, types, ranges and tasks", "[data][multi_fashion]") {
  const fulcrum::MultiTaskData data = fulcrum::makeMultiFashion(smallFashion(), 7);

  REQUIRE(data.tasks.size() == 2);
  CHECK(data.tasks[0].name == "top_left");
  CHECK(data.tasks[1].name == "bottom_right");
  for (const auto& task : data.tasks) {
    CHECK(task.kind == fulcrum::TaskKind::kClassification);
    CHECK(task.outputs == 10);
  }
  CHECK(data.inputShape == std::vector<int64_t>{1, 36, 36});

  const std::vector<std::pair<const fulcrum::Split*, int64_t>> splits = {
      {&data.train, 200}, {&data.val, 50}, {&data.test, 50}};
  for (const auto& [split, size] : splits) {
    REQUIRE(split->size() == size);
    REQUIRE(split->inputs.scalar_type() == torch::kFloat32);
    REQUIRE(split->inputs.sizes() == torch::IntArrayRef({size, 1, 36, 36}));
    CHECK(split->inputs.min().item<float>() >= 0.0f);
    CHECK(split->inputs.max().item<float>() <= 1.0f);
    CHECK(split->inputs.max().item<float>() > 0.5f);  // items are drawn, not a blank canvas
    REQUIRE(split->targets.size() == 2);
    for (const auto& target : split->targets) {
      REQUIRE(target.scalar_type() == torch::kInt64);
      REQUIRE(target.sizes() == torch::IntArrayRef({size}));
      CHECK(target.min().item<int64_t>() >= 0);
      CHECK(target.max().item<int64_t>() <= 9);
    }
    CHECK(torch::all(split->targets[0] != split->targets[1]).item<bool>());
  }
  // 200 composites over 10 classes: every class appears in both positions.
  CHECK(torch::bincount(data.train.targets[0], {}, 10).min().item<int64_t>() > 0);
  CHECK(torch::bincount(data.train.targets[1], {}, 10).min().item<int64_t>() > 0);
}

TEST_CASE("Multi-Fashion keeps shifted items whole on the canvas", "[data][multi_fashion]") {
  // Offsets are clamped to [0, 8]; with maxShift 4 the top-left item starts at
  // row/column 0..4 (ends by 31) and the bottom-right one at 4..8, so the
  // 4×4 corners at the top-right and bottom-left are never painted.
  const fulcrum::MultiTaskData data = fulcrum::makeMultiFashion(smallFashion(4), 3);
  const torch::Tensor canvas = data.train.inputs.squeeze(1);
  using torch::indexing::Slice;
  CHECK(canvas.index({Slice(), Slice(0, 4), Slice(32, 36)}).max().item<float>() == 0.0f);
  CHECK(canvas.index({Slice(), Slice(32, 36), Slice(0, 4)}).max().item<float>() == 0.0f);
  // Shifts do happen: the same seed without shifts gives other canvases.
  const fulcrum::MultiTaskData unshifted = fulcrum::makeMultiFashion(smallFashion(0), 3);
  CHECK_FALSE(torch::equal(data.train.inputs, unshifted.train.inputs));
}

TEST_CASE("Multi-Fashion places, pairs and splits source items as documented", "[data][multi_fashion]") {
  const fs::path dir = scratchDirectory("fashion_markers");
  writeMarkerFashion(dir, "train", 200, 1);   // pixel values 1..200
  writeMarkerFashion(dir, "t10k", 40, 211);   // pixel values 211..250
  fulcrum::MultiFashionOptions options;
  options.directory = dir.string();
  options.trainSize = 360;  // twice the 180 training sources
  options.valSize = 400;
  options.testSize = 400;
  options.valFraction = 0.1;  // 20 of 200 sources
  // Item 1 within [0, 3]², item 2 within [5, 8]²: the markers never coincide.
  options.maxShift = 3;
  const fulcrum::MultiTaskData data = fulcrum::makeMultiFashion(options, 21);

  const auto train = decodeMarkers(data.train, 1, 200);
  const auto val = decodeMarkers(data.val, 1, 200);
  const auto test = decodeMarkers(data.test, 211, 40);  // test items come from t10k only
  REQUIRE(train.size() == 360);
  REQUIRE(val.size() == 400);
  REQUIRE(test.size() == 400);

  SECTION("train and validation use disjoint pools of 180 and 20 sources") {
    std::set<int64_t> trainIds, valIds;
    for (const auto& pair : train) trainIds.insert({pair[0].id, pair[1].id});
    for (const auto& pair : val) valIds.insert({pair[0].id, pair[1].id});
    CHECK(trainIds.size() == 180);
    CHECK(valIds.size() == 20);
    for (int64_t id : valIds) CHECK(trainIds.count(id) == 0);
  }
  SECTION("the first item cycles through the pool: each source leads exactly twice") {
    std::map<int64_t, int> leads;
    for (const auto& pair : train) ++leads[pair[0].id];
    CHECK(leads.size() == 180);
    for (const auto& [id, times] : leads) CHECK(times == 2);
    for (size_t j = 0; j + 180 < train.size(); ++j) CHECK(train[j][0].id == train[j + 180][0].id);
  }
  SECTION("the second item is drawn from the whole pool of other classes") {
    std::set<int64_t> seconds;
    for (const auto& pair : train) seconds.insert(pair[1].id);
    // 360 uniform draws among ~162 items cover about 144 of them.
    CHECK(seconds.size() > 110);
  }
  SECTION("offsets are nominal + shift clamped to [0, 8]") {
    // A shift uniform in -m..m clamped to the canvas leaves an item at its
    // nominal offset with probability (m + 1) / (2m + 1) and moves it d = 1..m
    // pixels inwards with probability 1 / (2m + 1) each.
    const int64_t maxShift = GENERATE(3, 4);
    options.maxShift = maxShift;
    const fulcrum::MultiTaskData shifted = fulcrum::makeMultiFashion(options, 22);
    std::array<int64_t, 9> distance{};
    int64_t samples = 0;
    for (const auto& pairs : {decodeMarkers(shifted.train, 1, 200), decodeMarkers(shifted.val, 1, 200),
                              decodeMarkers(shifted.test, 211, 40)}) {
      for (const auto& pair : pairs) {
        for (int64_t offset : {pair[0].top, pair[0].left}) {
          REQUIRE((offset >= 0 && offset <= 8));
          ++distance[offset];
        }
        for (int64_t offset : {pair[1].top, pair[1].left}) {
          REQUIRE((offset >= 0 && offset <= 8));
          ++distance[8 - offset];
        }
        samples += 4;
      }
    }
    // Bounds at 6 standard deviations of the binomial counts.
    const double n = static_cast<double>(samples);
    const double p0 = (maxShift + 1.0) / (2.0 * maxShift + 1.0), pK = 1.0 / (2.0 * maxShift + 1.0);
    INFO("maxShift " << maxShift << ", " << samples << " offsets; counts by distance " << distance[0] << " "
                     << distance[1] << " " << distance[2] << " " << distance[3] << " " << distance[4] << " "
                     << distance[5]);
    CHECK(std::abs(distance[0] - n * p0) < 6 * std::sqrt(n * p0 * (1 - p0)));
    for (int64_t d = 1; d <= maxShift; ++d) CHECK(std::abs(distance[d] - n * pK) < 6 * std::sqrt(n * pK * (1 - pK)));
    for (int64_t d = maxShift + 1; d <= 8; ++d) CHECK(distance[d] == 0);
  }
  SECTION("without shifts the items sit exactly at (0, 0) and (8, 8)") {
    options.maxShift = 0;
    const fulcrum::MultiTaskData fixed = fulcrum::makeMultiFashion(options, 21);
    const auto pairs = decodeMarkers(fixed.train, 1, 200);
    REQUIRE(pairs.size() == 360);
    for (const auto& pair : pairs) {
      CHECK((pair[0].top == 0 && pair[0].left == 0));
      CHECK((pair[1].top == 8 && pair[1].left == 8));
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("Multi-Fashion without shifts is the pixel max of two source items", "[data][multi_fashion]") {
  const fulcrum::MultiTaskData data = fulcrum::makeMultiFashion(smallFashion(0), 11);
  const std::set<int64_t> trainItems = reconstructUnshifted(data.train, fashionSources("train"));
  const std::set<int64_t> valItems = reconstructUnshifted(data.val, fashionSources("train"));
  reconstructUnshifted(data.test, fashionSources("t10k"));

  // Most items are identified uniquely; train and validation never share one.
  CHECK(trainItems.size() > 200);
  CHECK(valItems.size() > 50);
  for (int64_t item : valItems) {
    INFO("training source " << item << " appears in both the train and the validation split");
    CHECK(trainItems.count(item) == 0);
  }
}

TEST_CASE("Multi-Fashion is deterministic in the seed", "[data][multi_fashion]") {
  const fulcrum::MultiTaskData a = fulcrum::makeMultiFashion(smallFashion(), 5);
  torch::manual_seed(1234);  // the global torch seed must not matter
  const fulcrum::MultiTaskData b = fulcrum::makeMultiFashion(smallFashion(), 5);
  requireEqual(a.train, b.train);
  requireEqual(a.val, b.val);
  requireEqual(a.test, b.test);

  const fulcrum::MultiTaskData c = fulcrum::makeMultiFashion(smallFashion(), 6);
  CHECK_FALSE(torch::equal(a.train.inputs, c.train.inputs));
  CHECK_FALSE(torch::equal(a.train.targets[0], c.train.targets[0]));
  CHECK_FALSE(torch::equal(a.test.inputs, c.test.inputs));

  // Each split has its own random stream: a larger test split leaves the
  // training split unchanged.
  fulcrum::MultiFashionOptions moreTest = smallFashion();
  moreTest.testSize = 80;
  const fulcrum::MultiTaskData d = fulcrum::makeMultiFashion(moreTest, 5);
  requireEqual(a.train, d.train);
  CHECK(d.test.size() == 80);
}

TEST_CASE("Multi-Fashion reports missing or malformed data", "[data][multi_fashion]") {
  fulcrum::MultiFashionOptions options = smallFashion();

  SECTION("a missing directory") {
    options.directory = "/nonexistent/fashion-mnist-copy";
    REQUIRE_THROWS_AS(fulcrum::makeMultiFashion(options, 1), DataError);
    REQUIRE_THROWS_WITH(fulcrum::makeMultiFashion(options, 1),
                        Contains("/nonexistent/fashion-mnist-copy") && Contains("dataset-fashion-mnist"));
  }
  SECTION("a directory without the files") {
    const fs::path dir = scratchDirectory("fashion_empty");
    options.directory = dir.string();
    REQUIRE_THROWS_WITH(fulcrum::makeMultiFashion(options, 1),
                        Contains((dir / "train-images-idx3-ubyte.gz").string()) && Contains("file not found") &&
                            Contains("dataset-fashion-mnist"));
    fs::remove_all(dir);
  }
  SECTION("images of the wrong size") {
    const fs::path dir = scratchDirectory("fashion_bad");
    writeGz(dir / "train-images-idx3-ubyte.gz", concat(idxHeader(0x08, {2, 27, 27}), ramp(2 * 27 * 27)));
    writeGz(dir / "train-labels-idx1-ubyte.gz", concat(idxHeader(0x08, {2}), {0, 1}));
    options.directory = dir.string();
    REQUIRE_THROWS_WITH(fulcrum::makeMultiFashion(options, 1),
                        Contains((dir / "train-images-idx3-ubyte.gz").string()) && Contains("28 × 28") &&
                            Contains("dataset-fashion-mnist"));
    fs::remove_all(dir);
  }
}

TEST_CASE("Multi-Fashion validates its options, naming them", "[data][multi_fashion]") {
  fulcrum::MultiFashionOptions options = smallFashion();
  SECTION("maxShift") {
    options.maxShift = 5;
    REQUIRE_THROWS_WITH(fulcrum::makeMultiFashion(options, 1), Contains("maxShift = 5") && Contains("0..4"));
    options.maxShift = -1;
    REQUIRE_THROWS_WITH(fulcrum::makeMultiFashion(options, 1), Contains("maxShift = -1"));
  }
  SECTION("valFraction") {
    options.valFraction = 1.0;
    REQUIRE_THROWS_WITH(fulcrum::makeMultiFashion(options, 1), Contains("valFraction = 1") && Contains("(0, 1)"));
    options.valFraction = 1e-6;  // 0 of 60000 sources: an empty validation pool
    REQUIRE_THROWS_WITH(fulcrum::makeMultiFashion(options, 1), Contains("valFraction") && Contains("validation pool"));
  }
  SECTION("sizes") {
    options.trainSize = 0;
    REQUIRE_THROWS_WITH(fulcrum::makeMultiFashion(options, 1), Contains("trainSize = 0"));
    options.trainSize = 10;
    options.testSize = -3;
    REQUIRE_THROWS_WITH(fulcrum::makeMultiFashion(options, 1), Contains("testSize = -3"));
  }
}

// ===========================================================================
// GradNorm toy

TEST_CASE("GradNorm toy has the documented shapes and tasks", "[data][gradnorm_toy]") {
  const fulcrum::MultiTaskData data = fulcrum::makeGradNormToy(smallToy(), 1);
  REQUIRE(data.tasks.size() == 2);
  CHECK(data.tasks[0].name == "task0");
  CHECK(data.tasks[1].name == "task1");
  for (const auto& task : data.tasks) {
    CHECK(task.kind == fulcrum::TaskKind::kRegression);
    CHECK(task.outputs == 100);
  }
  CHECK(data.inputShape == std::vector<int64_t>{250});
  const std::vector<std::pair<const fulcrum::Split*, int64_t>> splits = {
      {&data.train, 300}, {&data.val, 20}, {&data.test, 30}};
  for (const auto& [split, size] : splits) {
    REQUIRE(split->inputs.scalar_type() == torch::kFloat32);
    REQUIRE(split->inputs.sizes() == torch::IntArrayRef({size, 250}));
    REQUIRE(split->targets.size() == 2);
    for (const auto& target : split->targets) {
      REQUIRE(target.scalar_type() == torch::kFloat32);
      REQUIRE(target.sizes() == torch::IntArrayRef({size, 100}));
    }
    // x is uniform in [-1, 1]^250 scaled to unit L2 norm.
    const torch::Tensor norms = split->inputs.to(torch::kFloat64).norm(2, 1);
    CHECK(torch::allclose(norms, torch::ones_like(norms), 0.0, 1e-6));
    CHECK(split->inputs.min().item<float>() < 0.0f);
  }
  fulcrum::GradNormToyOptions ten = smallToy();
  ten.tasks = 12;
  ten.sigmas.clear();
  const fulcrum::MultiTaskData many = fulcrum::makeGradNormToy(ten, 1);
  REQUIRE(many.tasks.size() == 12);
  CHECK(many.tasks[9].name == "task9");
  CHECK(many.tasks[11].name == "task11");
}

TEST_CASE("GradNorm toy targets scale with sigma", "[data][gradnorm_toy]") {
  const fulcrum::MultiTaskData data = fulcrum::makeGradNormToy(smallToy(), 2);
  const torch::Tensor& y0 = data.train.targets[0];
  const torch::Tensor& y1 = data.train.targets[1];
  const double ratio = y1.std().item<double>() / y0.std().item<double>();
  CHECK(ratio > 50.0);
  CHECK(ratio < 200.0);
  // |σ tanh(·)| <= σ, and with B ~ N(0, 10²) the tanh saturates near ±1.
  CHECK(y0.abs().max().item<float>() <= 1.0f);
  CHECK(y1.abs().max().item<float>() <= 100.0f);
  CHECK(y0.abs().max().item<float>() > 0.9f);
  CHECK(y1.abs().max().item<float>() > 90.0f);
}

TEST_CASE("GradNorm toy draws each sigma uniformly between 1 and maxSigma when none is given", "[data][gradnorm_toy]") {
  fulcrum::GradNormToyOptions options = smallToy();
  options.tasks = 6;
  options.sigmas.clear();
  options.maxSigma = 10.0;
  const fulcrum::MultiTaskData data = fulcrum::makeGradNormToy(options, 3);
  // The tanh saturates, so max |y_i| is just below σ_i.
  std::vector<float> peaks;
  for (const auto& target : data.train.targets) {
    const float peak = target.abs().max().item<float>();
    CHECK(peak <= 10.0f);
    CHECK(peak >= 0.9f);
    peaks.push_back(peak);
  }
  std::sort(peaks.begin(), peaks.end());
  CHECK(peaks.back() - peaks.front() > 1.0f);  // not all σ equal
}

TEST_CASE("GradNorm toy is y = sigma tanh((B + eps_i) x) with one B and eps_i for all splits",
          "[data][gradnorm_toy]") {
  SECTION("with ε = 0 the tasks share B: y_1 = (σ_1 / σ_0) y_0 exactly") {
    fulcrum::GradNormToyOptions options = smallToy();
    options.sigmas = {1.0, 2.0};
    options.epsStd = 0.0;
    const fulcrum::MultiTaskData data = fulcrum::makeGradNormToy(options, 4);
    CHECK(torch::equal(data.test.targets[1], data.test.targets[0] * 2));
    options.epsStd = 3.5;
    const fulcrum::MultiTaskData noisy = fulcrum::makeGradNormToy(options, 4);
    CHECK_FALSE(torch::allclose(noisy.test.targets[1], noisy.test.targets[0] * 2, 0.1, 0.1));
  }
  SECTION("atanh(y / σ) is linear in x, with the same map on every split") {
    // Small B and ε keep tanh away from saturation so atanh is well conditioned.
    fulcrum::GradNormToyOptions options = smallToy();
    options.bStd = 0.3;
    options.epsStd = 0.4;
    const fulcrum::MultiTaskData data = fulcrum::makeGradNormToy(options, 5);
    for (size_t task = 0; task < 2; ++task) {
      const double sigma = options.sigmas[task];
      const torch::Tensor x = data.train.inputs.to(torch::kFloat64);
      const torch::Tensor z = torch::atanh(data.train.targets[task].to(torch::kFloat64) / sigma);
      // For unit x, each entry of (B + ε_i) x is N(0, 0.3² + 0.4²) = N(0, 0.5²).
      CHECK(z.std().item<double>() > 0.4);
      CHECK(z.std().item<double>() < 0.6);
      const torch::Tensor weightsT = std::get<0>(torch::linalg_lstsq(x, z));  // 250 × 100
      const torch::Tensor testZ = torch::atanh(data.test.targets[task].to(torch::kFloat64) / sigma);
      const torch::Tensor predicted = data.test.inputs.to(torch::kFloat64).matmul(weightsT);
      INFO("task " << task);
      CHECK((predicted - testZ).abs().max().item<double>() < 1e-3);
    }
  }
}

TEST_CASE("GradNorm toy is deterministic in the seed", "[data][gradnorm_toy]") {
  const fulcrum::MultiTaskData a = fulcrum::makeGradNormToy(smallToy(), 9);
  torch::manual_seed(99);
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  const fulcrum::MultiTaskData b = fulcrum::makeGradNormToy(smallToy(), 9);
  torch::set_num_threads(threads);
  requireEqual(a.train, b.train);
  requireEqual(a.val, b.val);
  requireEqual(a.test, b.test);

  const fulcrum::MultiTaskData c = fulcrum::makeGradNormToy(smallToy(), 10);
  CHECK_FALSE(torch::equal(a.train.inputs, c.train.inputs));
  CHECK_FALSE(torch::equal(a.train.targets[0], c.train.targets[0]));
  // Different splits draw different inputs.
  CHECK_FALSE(torch::equal(a.val.inputs, a.test.inputs.slice(0, 0, 20)));
}

TEST_CASE("GradNorm toy validates its options, naming them", "[data][gradnorm_toy]") {
  fulcrum::GradNormToyOptions options = smallToy();
  SECTION("sigmas of the wrong length") {
    options.sigmas = {1.0, 2.0, 3.0};
    REQUIRE_THROWS_AS(fulcrum::makeGradNormToy(options, 1), DataError);
    REQUIRE_THROWS_WITH(fulcrum::makeGradNormToy(options, 1),
                        Contains("sigmas has 3 entries") && Contains("tasks = 2"));
  }
  SECTION("a non-positive sigma") {
    options.sigmas = {1.0, 0.0};
    REQUIRE_THROWS_WITH(fulcrum::makeGradNormToy(options, 1), Contains("sigmas[1] = 0"));
  }
  SECTION("sizes and dimensions") {
    options.tasks = 0;
    options.sigmas.clear();
    REQUIRE_THROWS_WITH(fulcrum::makeGradNormToy(options, 1), Contains("tasks = 0"));
    options.tasks = 2;
    options.inputDim = 0;
    REQUIRE_THROWS_WITH(fulcrum::makeGradNormToy(options, 1), Contains("inputDim = 0"));
    options.inputDim = 5;
    options.valSize = 0;
    REQUIRE_THROWS_WITH(fulcrum::makeGradNormToy(options, 1), Contains("valSize = 0"));
  }
  SECTION("maxSigma") {
    options.maxSigma = 1.0;
    REQUIRE_THROWS_WITH(fulcrum::makeGradNormToy(options, 1), Contains("maxSigma = 1") && Contains("> 1"));
  }
}
