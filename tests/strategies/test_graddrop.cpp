#include <catch2/catch.hpp>
#include <cmath>

#include "strategies/graddrop.h"
#include "strategies/registry.h"
#include "strategies/support.h"
#include "strategy_test_support.h"

using namespace fulcrum;
using namespace fulcrum::testing;

namespace {

using Vec = std::vector<double>;
using Matrix = std::vector<Vec>;

torch::Tensor matrix(const Matrix& rows) {
  std::vector<torch::Tensor> tensors;
  for (const auto& row : rows) tensors.push_back(torch::tensor(row, torch::kFloat64));
  return torch::stack(tensors);
}
torch::Tensor vector(const Vec& values) { return torch::tensor(values, torch::kFloat64); }
Vec doubles(const torch::Tensor& t) { return fulcrum::detail::toDoubles(t); }

fulcrum::detail::GradDropResult combine(const Matrix& g, const Vec& u, const Vec& leaks) {
  return fulcrum::detail::gradDropCombine(matrix(g), vector(u), leaks);
}

}  // namespace

TEST_CASE("graddrop: hand-derived masks with a given U", "[strategy][graddrop]") {
  SECTION("one sign per element: every component kept, the plain sum") {
    // Column 0 all positive (P = 1), column 1 all negative (P = 0), column 2
    // positive and zero (P = 1): any U in (0, 1) keeps everything.
    const Matrix g{{1, -2, 0.5}, {3, -1, 0}};
    for (const Vec& u : {Vec{0.999, 0.001, 0.5}, Vec{0.001, 0.999, 0.999}}) {
      const auto r = combine(g, u, {0, 0});
      REQUIRE(doubles(r.direction) == Vec{4.0, -3.0, 0.5});
      REQUIRE(r.kept == 5);
      REQUIRE(r.nonzero == 5);
      REQUIRE(r.conflicting == 0);
    }
  }
  SECTION("opposed entries: P = 2/3 and 3/4, one sign kept per element") {
    // Column 0: (2, −1), P = ½(1 + 1/3) = 2/3; column 1: (−1, 3), P = ½(1 + 2/4) = 3/4.
    const Matrix g{{2, -1}, {-1, 3}};
    // U = (0.5, 0.9): P > U in column 0 keeps the positive 2; P < U in
    // column 1 keeps the negative −1.
    auto r = combine(g, {0.5, 0.9}, {0, 0});
    REQUIRE(doubles(r.direction) == Vec{2.0, -1.0});
    REQUIRE(r.kept == 2);
    REQUIRE(r.nonzero == 4);
    REQUIRE(r.conflicting == 2);
    // U just either side of P flips the choice: column 0 at 2/3 ± 0.01.
    REQUIRE(doubles(combine(g, {2.0 / 3.0 - 0.01, 0.74}, {0, 0}).direction) == Vec{2.0, 3.0});
    REQUIRE(doubles(combine(g, {2.0 / 3.0 + 0.01, 0.76}, {0, 0}).direction) == Vec{-1.0, -1.0});
    // A leak of ¼ lets a quarter of each dropped entry through.
    r = combine(g, {0.5, 0.9}, {0.25, 0.25});
    REQUIRE(doubles(r.direction)[0] == Approx(2.0 - 0.25));
    REQUIRE(doubles(r.direction)[1] == Approx(-1.0 + 0.75));
    // Per-task leaks (1, 0): task a passes whole, only b is masked. With U =
    // (0.9, 0.5) column 0 keeps negatives (b's −1), column 1 positives (b's 3).
    REQUIRE(doubles(combine(g, {0.9, 0.5}, {0, 0}).direction) == Vec{-1.0, 3.0});
    REQUIRE(doubles(combine(g, {0.9, 0.5}, {1, 0}).direction) == Vec{1.0, 2.0});
  }
  SECTION("leak 1 is the plain sum whatever U") {
    const Matrix g{{2, -1, 0.5}, {-1, 3, -4}};
    for (const Vec& u : {Vec{0.1, 0.2, 0.3}, Vec{0.9, 0.8, 0.7}}) {
      REQUIRE(doubles(combine(g, u, {1, 1}).direction) == Vec{1.0, 2.0, -3.5});
    }
  }
  SECTION("an element whose gradients are all 0 gives 0 (P = ½, no conflict)") {
    // Column 1: (1, −1), P = ½ > U = 0.2 keeps the positive.
    const auto r = combine({{0, 1}, {0, -1}}, {0.3, 0.2}, {0, 0});
    REQUIRE(doubles(r.direction) == Vec{0.0, 1.0});
    REQUIRE(r.conflicting == 1);
    REQUIRE(r.nonzero == 2);
  }
  SECTION("bad input") {
    REQUIRE_THROWS_WITH(combine({{1, 2}}, {0.5, 0.5}, {0, 0}),
                        Catch::Contains("expected a gradient matrix with 2 rows"));
    REQUIRE_THROWS_WITH(combine({{1, 2}, {3, 4}}, {0.5}, {0, 0}),
                        Catch::Contains("expected 2 uniforms, got 1"));
    REQUIRE_THROWS_WITH(combine({{1, std::nan("")}, {3, 4}}, {0.5, 0.5}, {0, 0}),
                        Catch::Contains("NaN or infinite"));
  }
}

TEST_CASE("graddrop: the paper's properties, numerically", "[strategy][graddrop]") {
  torch::manual_seed(5);
  const torch::Tensor g = torch::randn({3, 200}, torch::kFloat64);
  const torch::Tensor u = fulcrum::detail::gradDropUniforms(1, 0, 200);
  const Vec d = doubles(fulcrum::detail::gradDropCombine(g, u, {0, 0, 0}).direction);
  SECTION("with no leak each element keeps one sign: |d| = Σ_kept |g_i|") {
    const Vec rows = doubles(g);
    const Vec purity = doubles(0.5 * (1 + g.sum(0) / g.abs().sum(0)));
    const Vec uniforms = doubles(u);
    for (std::size_t k = 0; k < 200; ++k) {
      double kept = 0.0, keptAbs = 0.0;
      for (std::size_t i = 0; i < 3; ++i) {
        const double v = rows[i * 200 + k];
        if ((purity[k] > uniforms[k] && v > 0) || (purity[k] < uniforms[k] && v < 0)) {
          kept += v;
          keptAbs += std::abs(v);
        }
      }
      REQUIRE(d[k] == Approx(kept).margin(1e-12));
      REQUIRE(std::abs(d[k]) == Approx(keptAbs).margin(1e-12));
    }
  }
  SECTION("positively homogeneous and blind to the task order, for a given U") {
    const Vec scaled = doubles(fulcrum::detail::gradDropCombine(3.0 * g, u, {0, 0, 0}).direction);
    const Vec permuted =
        doubles(fulcrum::detail::gradDropCombine(g.flip({0}), u, {0, 0, 0}).direction);
    for (std::size_t k = 0; k < 200; ++k) {
      REQUIRE(scaled[k] == Approx(3.0 * d[k]).margin(1e-12));
      REQUIRE(permuted[k] == Approx(d[k]).margin(1e-12));
    }
  }
  SECTION("in expectation a positive entry is kept with probability P, a negative one with 1 − P") {
    // E[d] = P Σ_{g_i>0} g_i + (1 − P) Σ_{g_i<0} g_i, averaged over 4000 of
    // the strategy's own draws (deterministic: seed 9).
    const torch::Tensor small = matrix({{2, -1, 0.5}, {1, 1, -3}});
    const auto tasks = makeTasks({"a", "b"});
    auto graddrop = attached("{name: graddrop}", tasks, 9);
    FixedGradients source(small);
    const int draws = 4000;
    Vec mean(3, 0.0);
    for (int s = 0; s < draws; ++s) {
      const Vec step = doubles(stepWith(*graddrop, {1, 1}, source, s).direction);
      for (std::size_t k = 0; k < 3; ++k) mean[k] += step[k] / draws;
    }
    // Column 0: (2, 1), P = 1 → 3. Column 1: (−1, 1), P = ½ → 0. Column 2:
    // (0.5, −3), P = ½(1 − 2.5/3.5) = 1/7 → 0.5/7 − 3·6/7 = −17.5/7 = −2.5.
    REQUIRE(mean[0] == Approx(3.0));
    REQUIRE(mean[1] == Approx(0.0).margin(0.05));
    REQUIRE(mean[2] == Approx(-2.5).margin(0.06));
  }
}

TEST_CASE("graddrop: the strategy on representation gradients", "[strategy][graddrop]") {
  const auto tasks = makeTasks({"a", "b"});
  auto graddrop = attached("{name: graddrop}", tasks, 4);
  REQUIRE(graddrop->needs() == GradientNeed::kRepresentation);
  REQUIRE(graddrop->diagnosticNames() ==
          std::vector<std::string>{"kept_fraction", "conflict_fraction"});
  const Matrix rows{{2, -1, 1, 0}, {-1, 3, 1, 0}};
  FixedGradients source(rows);
  const StepOutput out = stepWith(*graddrop, {1, 1}, source, 0);
  REQUIRE(source.representationCalls == 1);
  REQUIRE(source.sharedCalls == 0);
  REQUIRE(out.kind == StepOutput::Kind::kRepresentationGradient);
  REQUIRE(weightsOf(out) == Vec{1.0, 1.0});
  // Step 0 uses the uniforms of draw 0 of seed 4.
  const auto expected = fulcrum::detail::gradDropCombine(
      matrix(rows), fulcrum::detail::gradDropUniforms(4, 0, 4), {0, 0});
  REQUIRE(doubles(out.direction) == doubles(expected.direction));
  REQUIRE(out.diagnostics[0] == Approx(static_cast<double>(expected.kept) / 6.0));
  REQUIRE(out.diagnostics[1] == Approx(0.5));  // columns 0 and 1 of 4 conflict
  REQUIRE(doubles(out.direction)[2] == 2.0);   // (1, 1): both kept
  REQUIRE(doubles(out.direction)[3] == 0.0);

  SECTION("float32 gradients: U is exact in float32, the same masks here") {
    FixedGradients single(matrix(rows).to(torch::kFloat32));
    auto again = attached("{name: graddrop}", tasks, 4);
    const StepOutput f = stepWith(*again, {1, 1}, single, 0);
    REQUIRE(f.direction.scalar_type() == torch::kFloat32);
    REQUIRE(doubles(f.direction) == doubles(out.direction));
  }
}

TEST_CASE("graddrop: uniforms, determinism per seed, state round trip", "[strategy][graddrop]") {
  SECTION("the uniforms are odd multiples of 2^-24 in (0, 1), fixed by (seed, draw)") {
    const Vec u = doubles(fulcrum::detail::gradDropUniforms(3, 5, 10000));
    double mean = 0.0;
    for (double v : u) {
      REQUIRE(v > 0.0);
      REQUIRE(v < 1.0);
      const double k = v * 0x1.0p24;
      REQUIRE(k == std::floor(k));
      REQUIRE(std::fmod(k, 2.0) == 1.0);
      mean += v / static_cast<double>(u.size());
    }
    REQUIRE(mean == Approx(0.5).margin(0.01));
    REQUIRE(doubles(fulcrum::detail::gradDropUniforms(3, 5, 10000)) == u);
    REQUIRE(doubles(fulcrum::detail::gradDropUniforms(3, 6, 10000)) != u);
    REQUIRE(doubles(fulcrum::detail::gradDropUniforms(4, 5, 10000)) != u);
  }
  const auto tasks = makeTasks({"a", "b"});
  torch::manual_seed(2);
  FixedGradients source(torch::randn({2, 64}, torch::kFloat64));
  SECTION("the same seed gives the same masks; another seed and the next step others") {
    auto first = attached("{name: graddrop}", tasks, 7);
    auto second = attached("{name: graddrop}", tasks, 7);
    auto other = attached("{name: graddrop}", tasks, 8);
    Vec previous;
    for (int64_t step = 0; step < 5; ++step) {
      const Vec d = doubles(stepWith(*first, {1, 1}, source, step).direction);
      REQUIRE(doubles(stepWith(*second, {1, 1}, source, step).direction) == d);
      REQUIRE(doubles(stepWith(*other, {1, 1}, source, step).direction) != d);
      REQUIRE(d != previous);
      previous = d;
    }
  }
  SECTION("a restored strategy continues the same sequence") {
    auto original = attached("{name: graddrop, leak: 0.1}", tasks, 21);
    for (int64_t step = 0; step < 3; ++step) stepWith(*original, {1, 1}, source, step);
    const StrategyState saved = original->state();
    REQUIRE(saved.at("seed").item<int64_t>() == 21);
    REQUIRE(saved.at("steps_drawn").item<int64_t>() == 3);
    auto restored = attached("{name: graddrop, leak: 0.1}", tasks, 99);
    restored->loadState(saved);
    for (int64_t step = 3; step < 6; ++step) {
      REQUIRE(doubles(stepWith(*restored, {1, 1}, source, step).direction) ==
              doubles(stepWith(*original, {1, 1}, source, step).direction));
    }
    REQUIRE(restored->state().at("steps_drawn").item<int64_t>() == 6);
    // attach() starts the sequence again.
    restored->attach(makeContext(tasks));
    REQUIRE(restored->state().at("steps_drawn").item<int64_t>() == 0);
    REQUIRE_THROWS_WITH(restored->loadState({{"seed", torch::tensor(int64_t{1})}}),
                        Catch::Contains("lacks 'steps_drawn'"));
    REQUIRE_THROWS_WITH(restored->loadState({{"seed", torch::tensor(int64_t{1})},
                                             {"steps_drawn", torch::tensor(int64_t{-2})}}),
                        Catch::Contains("'steps_drawn' is negative (-2)"));
  }
}

TEST_CASE("graddrop: options", "[strategy][graddrop]") {
  const auto tasks = makeTasks({"a", "b"});
  FixedGradients source({{2, -1}, {-1, 3}});
  auto sum = attached("{name: graddrop, leak: 1}", tasks);
  REQUIRE(doubles(stepWith(*sum, {1, 1}, source).direction) == Vec{1.0, 2.0});
  auto list = attached("{name: graddrop, leak: [1, 1]}", tasks);
  REQUIRE(doubles(stepWith(*list, {1, 1}, source).direction) == Vec{1.0, 2.0});
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: graddrop, leak: 1.5}"), tasks),
                      Catch::Contains("strategy.leak: 1.5 is out of range"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: graddrop, leak: [0.5]}"), tasks),
                      Catch::Contains("expected 2 leaks (one per task: a, b), got 1"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: graddrop, leak: [0.5, -1]}"), tasks),
                      Catch::Contains("strategy.leak[1]: -1 is out of range"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: graddrop, leak: some}"), tasks),
                      Catch::Contains("strategy.leak"));
  REQUIRE_THROWS_WITH(makeStrategy(yamlNode("{name: graddrop, gradients: parameters}"), tasks),
                      Catch::Contains("gradients"));
}
