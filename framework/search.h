// `sweep: {search: ...}`: random and quasi-random (Sobol') sampling of
// declared ranges, expanded into one zipped sweep axis, so that it combines
// with grid axes and seeds like any other.
//
//   sweep:
//     search:
//       method: sobol            # random | sobol
//       trials: 16
//       seed: 0                  # random: the generator's seed
//       space:
//         train.optimizer.lr: {log_uniform: [1e-4, 1e-1]}
//         strategy.alpha: {uniform: [0.1, 3]}
//         train.batch_size: {choice: [64, 128, 256]}
//         train.epochs: {int_uniform: [2, 8]}
//         strategy.weights: {simplex: 3, scale: 3}   # T weights > 0 summing to scale
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "framework/config_node.h"

namespace fulcrum {

/// The most dimensions sobolPoint() has direction numbers for.
inline constexpr std::size_t kSobolDimensions = 16;

/// Point `index` of the unscrambled Sobol' sequence in `dims` dimensions
/// (<= kSobolDimensions; Joe and Kuo's direction numbers, 32 bits, in
/// Gray-code order: the points of scipy's qmc.Sobol(d, scramble=False)).
/// Point 0 is the origin. std::invalid_argument for too many dimensions.
std::vector<double> sobolPoint(uint64_t index, std::size_t dims);

/// One key of the search space.
struct SearchDimension {
  enum class Kind { kUniform, kLogUniform, kIntUniform, kChoice, kSimplex };
  std::string key;  ///< the key path it sets
  Kind kind = Kind::kUniform;
  double low = 0.0, high = 1.0;     ///< uniform, log_uniform, int_uniform
  std::vector<YAML::Node> choices;  ///< choice
  int64_t simplex = 0;              ///< simplex: how many weights
  double scale = 1.0;               ///< simplex: their sum
  /// Unit-cube coordinates it takes (simplex: one per weight).
  std::size_t width() const {
    return kind == Kind::kSimplex ? static_cast<std::size_t>(simplex) : 1;
  }
};

/// `sweep.search`.
struct SearchSpec {
  std::string method = "random";  ///< "random" or "sobol"
  int64_t trials = 0;             ///< points drawn (>= 1)
  uint64_t seed = 0;              ///< random: std::mt19937_64's seed
  std::vector<SearchDimension> space;
};

/// Reads and validates `sweep.search` (ConfigError at the key otherwise).
SearchSpec readSearchSpec(const ConfigNode& node);

/// The points: values[k][i] is space[k]'s value at point i, as YAML.
/// Each point maps unit-cube coordinates u (random: uniform draws; sobol:
/// sobolPoint(i + 1), the origin skipped): uniform low + u(high − low);
/// log_uniform exp(log low + u(log high − log low)); int_uniform and choice
/// the ⌊u·n⌋-th of their n values; simplex w_t = −log u_t / Σ −log u_s × scale
/// (Dirichlet(1, …, 1): uniform on the simplex, every weight > 0). Numbers are
/// written with 4 significant digits.
std::vector<std::vector<YAML::Node>> samplePoints(const SearchSpec& spec);

}  // namespace fulcrum
