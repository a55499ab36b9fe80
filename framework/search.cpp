#include "framework/search.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <stdexcept>

namespace fulcrum {

namespace {

/// Joe and Kuo's primitive polynomials and initial direction numbers
/// (new-joe-kuo-6.21201) for dimensions 2 to 16: degree s, coefficients a,
/// m_1 .. m_s. Dimension 1 is the van der Corput sequence (every m = 1).
struct SobolRow {
  unsigned s, a;
  std::array<unsigned, 6> m;
};
constexpr std::array<SobolRow, kSobolDimensions - 1> kSobolTable = {{
    {1, 0, {1}},
    {2, 1, {1, 3}},
    {3, 1, {1, 3, 1}},
    {3, 2, {1, 1, 1}},
    {4, 1, {1, 1, 3, 3}},
    {4, 4, {1, 3, 5, 13}},
    {5, 2, {1, 1, 5, 5, 17}},
    {5, 4, {1, 1, 5, 5, 5}},
    {5, 7, {1, 1, 7, 11, 19}},
    {5, 11, {1, 1, 5, 1, 1}},
    {5, 13, {1, 1, 1, 3, 11}},
    {5, 14, {1, 3, 5, 5, 31}},
    {6, 1, {1, 3, 3, 9, 7, 49}},
    {6, 13, {1, 1, 1, 15, 21, 21}},
    {6, 16, {1, 3, 1, 13, 27, 49}},
}};

constexpr unsigned kBits = 32;

/// The 32 direction numbers v_1 .. v_32 of dimension `d` (0-based).
std::array<uint32_t, kBits> directions(std::size_t d) {
  std::array<uint32_t, kBits> v{};
  if (d == 0) {
    for (unsigned k = 0; k < kBits; ++k) v[k] = uint32_t{1} << (kBits - 1 - k);
    return v;
  }
  const SobolRow& row = kSobolTable[d - 1];
  for (unsigned k = 0; k < row.s; ++k) v[k] = row.m[k] << (kBits - 1 - k);
  for (unsigned k = row.s; k < kBits; ++k) {
    uint32_t x = v[k - row.s] ^ (v[k - row.s] >> row.s);
    for (unsigned i = 1; i < row.s; ++i)
      if ((row.a >> (row.s - 1 - i)) & 1u) x ^= v[k - i];
    v[k] = x;
  }
  return v;
}

/// A number written with 4 significant digits, as YAML.
YAML::Node rounded(double value) { return YAML::Load(fmt::format("{:.4g}", value)); }

}  // namespace

std::vector<double> sobolPoint(uint64_t index, std::size_t dims) {
  if (dims > kSobolDimensions)
    throw std::invalid_argument(
        fmt::format("sobol: {} dimensions; at most {} are supported", dims, kSobolDimensions));
  const uint64_t gray = index ^ (index >> 1);
  std::vector<double> point;
  for (std::size_t d = 0; d < dims; ++d) {
    const std::array<uint32_t, kBits> v = directions(d);
    uint32_t x = 0;
    for (unsigned bit = 0; bit < kBits && (gray >> bit) != 0; ++bit)
      if ((gray >> bit) & 1u) x ^= v[bit];
    point.push_back(std::ldexp(static_cast<double>(x), -static_cast<int>(kBits)));
  }
  return point;
}

SearchSpec readSearchSpec(const ConfigNode& node) {
  SearchSpec spec;
  spec.method = node.getString("method", spec.method, {"random", "sobol"});
  spec.trials = node.requireInt("trials", 1, 100000);
  spec.seed = static_cast<uint64_t>(node.getInt("seed", 0, 0, int64_t{1} << 53));
  if (spec.method == "sobol" && node.has("seed"))
    node.fail("seed", "the Sobol' sequence is deterministic: 'seed' is for method: random");
  if (!node.has("space"))
    node.fail("space", "missing key 'space' (key path: {uniform: [a, b]}, ...)");
  const ConfigNode space = node.child("space");
  const std::vector<std::string> kinds = {"uniform", "log_uniform", "int_uniform", "choice",
                                          "simplex"};
  for (const std::string& key : space.keys()) {
    const YAML::Node value = space.yaml()[key];
    if (!value.IsMap())
      space.fail(key,
                 "expected {uniform | log_uniform | int_uniform: [low, high]}, "
                 "{choice: [values]} or {simplex: T}");
    const ConfigNode range(value, space.file(), space.pathOf(key));
    std::vector<std::string> given;
    for (const std::string& kind : kinds)
      if (range.has(kind)) given.push_back(kind);
    if (given.size() != 1)
      space.fail(key, fmt::format("give exactly one of {}", fmt::join(kinds, ", ")));
    SearchDimension dimension;
    dimension.key = key;
    const std::string& kind = given[0];
    if (kind == "choice") {
      dimension.kind = SearchDimension::Kind::kChoice;
      const YAML::Node list = value["choice"];
      if (!list.IsSequence() || list.size() == 0)
        range.fail("choice", "expected a non-empty list of values");
      for (std::size_t i = 0; i < list.size(); ++i) dimension.choices.push_back(list[i]);
    } else if (kind == "simplex") {
      dimension.kind = SearchDimension::Kind::kSimplex;
      dimension.simplex = range.requireInt("simplex", 2, 1000);
      dimension.scale = range.getDouble("scale", 1.0, 1e-12, 1e12);
    } else {
      const std::vector<double> bounds = range.getDoubleList(kind, {}, -1e300, 1e300);
      if (bounds.size() != 2 || !(bounds[0] < bounds[1]))
        range.fail(kind, "expected [low, high] with low < high");
      dimension.low = bounds[0];
      dimension.high = bounds[1];
      dimension.kind = kind == "uniform"       ? SearchDimension::Kind::kUniform
                       : kind == "log_uniform" ? SearchDimension::Kind::kLogUniform
                                               : SearchDimension::Kind::kIntUniform;
      if (kind == "log_uniform" && !(dimension.low > 0.0))
        range.fail(kind, "a log-uniform range needs low > 0");
      if (kind == "int_uniform" && (dimension.low != std::floor(dimension.low) ||
                                    dimension.high != std::floor(dimension.high)))
        range.fail(kind, "an int_uniform range needs integer bounds");
    }
    range.finish({"choice"});  // its values are any YAML, read above
    spec.space.push_back(dimension);
  }
  if (spec.space.empty()) node.fail("space", "the search space is empty");
  std::size_t dims = 0;
  for (const SearchDimension& dimension : spec.space) dims += dimension.width();
  if (spec.method == "sobol" && dims > kSobolDimensions)
    node.fail("space", fmt::format("{} unit-cube dimensions (a simplex of T weights takes T); "
                                   "sobol supports at most {}: use method: random",
                                   dims, kSobolDimensions));
  node.finish();
  return spec;
}

std::vector<std::vector<YAML::Node>> samplePoints(const SearchSpec& spec) {
  std::size_t dims = 0;
  for (const SearchDimension& dimension : spec.space) dims += dimension.width();
  std::mt19937_64 generator(spec.seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<std::vector<YAML::Node>> values(spec.space.size());
  for (int64_t i = 0; i < spec.trials; ++i) {
    std::vector<double> u;
    if (spec.method == "sobol") {
      u = sobolPoint(static_cast<uint64_t>(i) + 1, dims);
    } else {
      for (std::size_t d = 0; d < dims; ++d) u.push_back(uniform(generator));
    }
    std::size_t at = 0;
    for (std::size_t k = 0; k < spec.space.size(); ++k) {
      const SearchDimension& dimension = spec.space[k];
      const double x = u[at];
      using Kind = SearchDimension::Kind;
      switch (dimension.kind) {
        case Kind::kUniform:
          values[k].push_back(rounded(dimension.low + x * (dimension.high - dimension.low)));
          break;
        case Kind::kLogUniform:
          values[k].push_back(rounded(std::exp(
              std::log(dimension.low) + x * (std::log(dimension.high) - std::log(dimension.low)))));
          break;
        case Kind::kIntUniform: {
          const double count = dimension.high - dimension.low + 1.0;
          values[k].push_back(YAML::Node(
              static_cast<int64_t>(dimension.low + std::min(std::floor(x * count), count - 1.0))));
          break;
        }
        case Kind::kChoice: {
          const std::size_t n = dimension.choices.size();
          values[k].push_back(dimension.choices[std::min(
              static_cast<std::size_t>(x * static_cast<double>(n)), n - 1)]);
          break;
        }
        case Kind::kSimplex: {
          std::vector<double> weights;
          double sum = 0.0;
          for (int64_t t = 0; t < dimension.simplex; ++t) {
            weights.push_back(-std::log(std::max(u[at + static_cast<std::size_t>(t)], 1e-12)));
            sum += weights.back();
          }
          YAML::Node list(YAML::NodeType::Sequence);
          for (double w : weights) list.push_back(rounded(w / sum * dimension.scale));
          values[k].push_back(list);
          break;
        }
      }
      at += dimension.width();
    }
  }
  return values;
}

}  // namespace fulcrum
