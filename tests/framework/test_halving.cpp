// Successive halving's pure parts (framework/halving.h): the rungs, the
// ranking, synchronous survivors, ASHA's promotion rule, the configurations
// of a sweep and the `sweep.halving` block's errors.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "framework/config_node.h"
#include "framework/halving.h"
#include "framework/sweep.h"

using namespace fulcrum;

namespace {

const double kNan = std::nan("");

/// Writes `text` to a scratch file, plans its sweep and reads its halving block.
std::optional<HalvingSpec> halvingOf(const std::string& text) {
  const std::string path = "/tmp/fulcrum-halving-" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(path) << text;
  struct Remove {
    std::string path;
    ~Remove() { std::remove(path.c_str()); }
  } remove{path};
  return readSweepHalving(path, planSweep(path));
}

const char* kBase = R"(
data: {kind: gradnorm_toy, sigmas: [1, 100], train_size: 40, val_size: 10, test_size: 10}
train: {epochs: 9}
strategy: {name: fixed}
)";

}  // namespace

TEST_CASE("halving: rungs are min_epochs·eta^k below the budget, then the budget", "[halving]") {
  CHECK(halvingRungs(1, 3, 27) == std::vector<int64_t>{1, 3, 9, 27});
  CHECK(halvingRungs(1, 3, 20) == std::vector<int64_t>{1, 3, 9, 20});
  CHECK(halvingRungs(2, 2, 8) == std::vector<int64_t>{2, 4, 8});
  CHECK(halvingRungs(5, 2, 6) == std::vector<int64_t>{5, 6});
}

TEST_CASE("halving: bestOf ranks in the criterion's direction, NaN last, ties to the first",
          "[halving]") {
  const std::vector<double> values = {0.5, kNan, 0.9, 0.5, 0.1};
  CHECK(bestOf(values, 5, true) == std::vector<std::size_t>{2, 0, 3, 4, 1});
  CHECK(bestOf(values, 5, false) == std::vector<std::size_t>{4, 0, 3, 2, 1});
  CHECK(bestOf(values, 2, false) == std::vector<std::size_t>{4, 0});
  CHECK(bestOf(values, 9, true).size() == 5);
}

TEST_CASE("halving: synchronous rungs keep floor(n/eta), at least one", "[halving]") {
  CHECK(synchronousSurvivors(16, 2) == 8);
  CHECK(synchronousSurvivors(10, 3) == 3);
  CHECK(synchronousSurvivors(2, 3) == 1);
  CHECK(synchronousSurvivors(1, 2) == 1);
}

TEST_CASE("halving: ASHA promotes the best unpromoted of the top floor(n/eta)", "[halving]") {
  // Lower is better. n = 1: the top 0, nothing to promote.
  CHECK_FALSE(ashaPromotion({0.3}, {false}, 2, false));
  // n = 2: the top 1 is position 1 (0.2).
  CHECK(ashaPromotion({0.3, 0.2}, {false, false}, 2, false) == std::size_t{1});
  // Already promoted: no other in the top 1.
  CHECK_FALSE(ashaPromotion({0.3, 0.2}, {false, true}, 2, false));
  // n = 4, top 2 = {3 (0.1), 1 (0.2)}; 3 promoted already: 1 goes.
  CHECK(ashaPromotion({0.3, 0.2, 0.4, 0.1}, {false, false, false, true}, 2, false) ==
        std::size_t{1});
  // Higher is better: top 2 of n = 4 = {2, 0}.
  CHECK(ashaPromotion({0.3, 0.2, 0.4, 0.1}, {false, false, false, false}, 2, true) ==
        std::size_t{2});
  // A failed trial (NaN) is never promoted, even among the top.
  CHECK_FALSE(ashaPromotion({kNan, kNan}, {false, false}, 2, false));
}

TEST_CASE("halving: a configuration is a sweep point over seeds and folds", "[halving]") {
  const std::vector<TrialSpec> trials =
      planSweepText(std::string(kBase) +
                        "sweep: {train.optimizer.lr: [0.1, 0.01], strategy.name: [fixed, dwa]}\n"
                        "seeds: [0, 1]\n",
                    "s.yaml");
  REQUIRE(trials.size() == 8);
  const auto groups = configurationGroups(trials);
  REQUIRE(groups.size() == 4);
  CHECK(groups[0] == std::vector<std::size_t>{0, 1});
  CHECK(groups[3] == std::vector<std::size_t>{6, 7});
}

TEST_CASE("halving: sweep.halving is read against the trials", "[halving]") {
  const std::string sweep = "sweep:\n  train.optimizer.lr: [0.1, 0.01]\n";
  SECTION("absent") { CHECK_FALSE(halvingOf(std::string(kBase) + sweep)); }
  SECTION("defaults: eta 3, from epoch 1; the metric's own direction") {
    const auto spec = halvingOf(std::string(kBase) + sweep + "  halving: {metric: task0/mse}\n");
    REQUIRE(spec);
    CHECK(spec->eta == 3);
    CHECK(spec->rungs == std::vector<int64_t>{1, 3, 9});
    CHECK_FALSE(spec->criterion.higherIsBetter);
    CHECK_FALSE(spec->asynchronous);
  }
  SECTION("errors name the key") {
    auto fails = [&](const std::string& block, const std::string& text) {
      try {
        halvingOf(std::string(kBase) + sweep + block);
        FAIL("no error for " << block);
      } catch (const ConfigError& e) {
        INFO(e.what());
        CHECK(std::string(e.what()).find(text) != std::string::npos);
      }
    };
    fails("  halving: {metric: task9/mse}\n", "sweep.halving.metric");
    fails("  halving: {metric: loss, eta: 1}\n", "sweep.halving.eta");
    fails("  halving: {metric: loss, min_epochs: 9}\n", "there would be one rung");
    fails("  halving: {metric: loss, rungs: 3}\n", "sweep.halving.rungs");
    fails("  halving: loss\n", "must be a mapping");
    fails("  halving: {metric: loss}\n  train.epochs: [3, 9]\n", "halving stops every trial");
  }
}
