// sweep.search: the Sobol' points against scipy's (qmc.Sobol(d=16,
// scramble=False), SciPy 1.10, Debian's python3-scipy), each range's map
// from the unit cube worked by hand on those points, and the expansion into
// sweep trials.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "framework/search.h"
#include "framework/sweep.h"

using namespace fulcrum;
using Catch::Matchers::Contains;

namespace {

const std::string kBase =
    "name: s\n"
    "data: {kind: gradnorm_toy, train_size: 10}\n"
    "train: {epochs: 1, optimizer: {lr: 0.001}}\n"
    "strategy: {name: fixed}\n";

std::vector<TrialSpec> plan(const std::string& sweep) {
  return planSweepText(kBase + sweep, "s.yaml");
}

}  // namespace

TEST_CASE("sobol: the points of scipy's unscrambled sequence", "[search]") {
  // Dimensions 1, 2, 3 and 16 of points 1, 2, 37 and 1000.
  auto pick = [](uint64_t index) {
    const std::vector<double> p = sobolPoint(index, 16);
    return std::vector<double>{p[0], p[1], p[2], p[15]};
  };
  CHECK(sobolPoint(0, 3) == std::vector<double>{0.0, 0.0, 0.0});
  CHECK(pick(1) == std::vector<double>{0.5, 0.5, 0.5, 0.5});
  CHECK(pick(2) == std::vector<double>{0.75, 0.25, 0.25, 0.25});
  CHECK(pick(37) == std::vector<double>{0.921875, 0.640625, 0.578125, 0.484375});
  CHECK(pick(1000) == std::vector<double>{0.2197265625, 0.0966796875, 0.5185546875, 0.3701171875});
  CHECK_THROWS_AS(sobolPoint(1, 17), std::invalid_argument);
}

TEST_CASE("search: each range maps the unit cube as documented", "[search]") {
  // Sobol points 1, 2, 3 (the origin skipped): (0.5, …), (0.75, 0.25, 0.25,
  // 0.25, 0.75, …), (0.25, 0.75, 0.75, 0.75, 0.25, …).
  const std::vector<TrialSpec> trials = plan(R"(sweep:
  search:
    method: sobol
    trials: 3
    space:
      train.optimizer.lr: {log_uniform: [1e-4, 1e-2]}
      train.epochs: {int_uniform: [2, 5]}
      train.batch_size: {choice: [16, 32, 64]}
      strategy.weights: {simplex: 2, scale: 2}
)");
  REQUIRE(trials.size() == 3);
  // lr = 10^(−4 + 2u): 1e-3, 10^−2.5, 10^−3.5, to 4 digits.
  CHECK(trials[0].spec.train.optimizer.lr == 0.001);
  CHECK(trials[1].spec.train.optimizer.lr == 0.003162);
  CHECK(trials[2].spec.train.optimizer.lr == 0.0003162);
  // epochs: the ⌊4u⌋-th of 2..5: 4, 3, 5; batch ⌊3u⌋-th: 32, 16, 64.
  CHECK(trials[0].spec.train.epochs == 4);
  CHECK(trials[1].spec.train.epochs == 3);
  CHECK(trials[2].spec.train.epochs == 5);
  CHECK(trials[0].spec.train.batchSize == 32);
  CHECK(trials[1].spec.train.batchSize == 16);
  CHECK(trials[2].spec.train.batchSize == 64);
  // Weights from coordinates 4 and 5: (0.5, 0.5) gives equal ones, summing
  // to 2; (0.25, 0.75): −log u = 1.3863, 0.28768, × 2 / 1.67398 = 1.656,
  // 0.3437 (4 digits); (0.75, 0.25) the reverse.
  auto weights = [&](std::size_t k) {
    return trials[k].spec.strategy.getDoubleList("weights", {});
  };
  CHECK(weights(0) == std::vector<double>{1.0, 1.0});
  CHECK(weights(1) == std::vector<double>{1.656, 0.3437});
  CHECK(weights(2) == std::vector<double>{0.3437, 1.656});
  CHECK(trials[1].values.at(0) ==
        std::pair<std::string, std::string>{"train.optimizer.lr", "0.003162"});
}

TEST_CASE("search: random draws, the simplex uniform (Dirichlet(1)) and positive", "[search]") {
  SearchSpec spec;
  spec.method = "random";
  spec.trials = 4000;
  spec.seed = 5;
  SearchDimension simplex;
  simplex.key = "strategy.weights";
  simplex.kind = SearchDimension::Kind::kSimplex;
  simplex.simplex = 3;
  spec.space.push_back(simplex);
  SearchDimension uniform;
  uniform.key = "x";
  uniform.low = 2.0;
  uniform.high = 4.0;
  spec.space.push_back(uniform);
  const auto values = samplePoints(spec);
  double first = 0.0, firstSquare = 0.0, x = 0.0;
  for (int64_t i = 0; i < spec.trials; ++i) {
    double sum = 0.0;
    for (std::size_t t = 0; t < 3; ++t) {
      const double w = values[0][static_cast<std::size_t>(i)][t].as<double>();
      REQUIRE(w > 0.0);
      sum += w;
    }
    CHECK(sum == Approx(1.0).margin(2e-3));  // 4 digits each
    const double w0 = values[0][static_cast<std::size_t>(i)][0].as<double>();
    first += w0;
    firstSquare += w0 * w0;
    x += values[1][static_cast<std::size_t>(i)].as<double>();
  }
  // Dirichlet(1, 1, 1): E w = 1/3, E w² = 2/(3·4) = 1/6; uniform [2, 4]: mean 3.
  const double n = static_cast<double>(spec.trials);
  CHECK(first / n == Approx(1.0 / 3.0).margin(0.015));
  CHECK(firstSquare / n == Approx(1.0 / 6.0).margin(0.01));
  CHECK(x / n == Approx(3.0).margin(0.05));
  // The same seed draws the same points; another seed others.
  CHECK(samplePoints(spec)[1][7].as<double>() == values[1][7].as<double>());
  spec.seed = 6;
  CHECK(samplePoints(spec)[1][7].as<double>() != values[1][7].as<double>());
}

TEST_CASE("search: combines with seeds and grid axes; bad spaces are located", "[search][sweep]") {
  const std::vector<TrialSpec> trials = plan(R"(sweep:
  search: {method: random, trials: 4, seed: 1, space: {train.optimizer.lr: {uniform: [0.001, 0.01]}}}
  train.batch_size: [8, 16]
seeds: [0, 1]
)");
  CHECK(trials.size() == 16);
  auto refused = [](const std::string& search, const std::string& message) {
    INFO(search);
    REQUIRE_THROWS_WITH(plan("sweep:\n  search: " + search + "\n"), Contains(message));
  };
  refused("{trials: 2, space: {train.optimizer.lr: {normal: [0, 1]}}}",
          "sweep.search.space.train.optimizer.lr: give exactly one of uniform, log_uniform");
  refused("{trials: 2, space: {train.optimizer.lr: {log_uniform: [0, 1]}}}",
          "a log-uniform range needs low > 0");
  refused("{trials: 2, space: {train.optimizer.lr: {uniform: [2, 1]}}}",
          "expected [low, high] with low < high");
  refused("{trials: 2, space: {train.epochs: {int_uniform: [1.5, 3]}}}", "integer bounds");
  refused("{method: sobol, trials: 2, seed: 3, space: {x: {uniform: [0, 1]}}}",
          "sweep.search.seed: the Sobol' sequence is deterministic");
  refused("{method: sobol, trials: 2, space: {strategy.weights: {simplex: 17}}}",
          "17 unit-cube dimensions");
  refused("{trials: 2}", "sweep.search.space: missing key 'space'");
  refused("{space: {x: {uniform: [0, 1]}}}", "sweep.search.trials");
}
