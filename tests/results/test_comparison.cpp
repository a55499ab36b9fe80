// Tests of the comparison arithmetic (mean ± std, best epoch, Δm%, ranks)
// with hand-computed numbers, of grouping a folder of trial files written
// with the results writer, and of the tidy export read back.

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "results/aggregate.h"
#include "results/comparison.h"
#include "results/sweep_folder.h"
#include "results/tidy_export.h"
#include "results/trial_file.h"

namespace fs = std::filesystem;
using namespace fulcrum::results;
using Catch::Matchers::Contains;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "fulcrum_compare_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code error;
    fs::remove_all(path_, error);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

/// A completed two-epoch trial with one task "a" (metric accuracy) whose
/// val/test accuracies are given, and two steps of 10 and 20 ms.
void writeTrial(const std::string& path, const std::string& strategy, int64_t seed,
                const std::string& lr, const std::vector<double>& val,
                const std::vector<double>& test, const std::string& status = "completed",
                const std::string& directions = "") {
  Attributes attributes;
  if (!directions.empty()) attributes.text["metric_directions"] = directions;
  attributes.text["strategy"] = strategy;
  attributes.text["config_yaml"] = "name: t\nseed: " + std::to_string(seed) +
                                   "\ntrain: {lr: " + lr +
                                   ", threads: 1}\nstrategy: {name: " + strategy + "}\n";
  attributes.integers["seed"] = seed;
  const std::vector<std::string> curves = {
      "steps/step",        "steps/epoch",           "steps/loss/a",
      "steps/weight/a",    "steps/time/total_ms",   "epochs/epoch",
      "epochs/seconds",    "epochs/val/a/accuracy", "epochs/test/a/accuracy",
      "epochs/test/a/loss"};
  TrialWriter writer(path, attributes, curves);
  const double steps[][5] = {{0, 0, 0.9, 1.0, 10.0}, {1, 1, 0.8, 1.0, 20.0}};
  for (const auto& row : steps) {
    for (std::size_t i = 0; i < 5; ++i) writer.append(i, row[i]);
  }
  for (std::size_t e = 0; e < val.size(); ++e) {
    writer.append(writer.curve("epochs/epoch"), static_cast<double>(e));
    writer.append(writer.curve("epochs/seconds"), 1.5);
    writer.append(writer.curve("epochs/val/a/accuracy"), val[e]);
    writer.append(writer.curve("epochs/test/a/accuracy"), test[e]);
    writer.append(writer.curve("epochs/test/a/loss"), 1.0 - test[e]);
  }
  if (status == "running") {
    writer.flush();
    return;  // the destructor leaves it "running"
  }
  writer.finish(status, status == "failed" ? "loss of task 'a' is NaN at step 1" : "");
}

TrialScore score(const std::string& label, int64_t seed, std::map<std::string, double> values) {
  TrialScore s;
  s.path = label + std::to_string(seed);
  s.label = label;
  s.seed = seed;
  s.finalValues = values;
  s.bestValues = values;
  s.msPerStep = 10.0;
  s.secondsPerTrial = 3.0;
  return s;
}

}  // namespace

TEST_CASE("meanStd uses the sample standard deviation and skips NaN", "[results][aggregate]") {
  const MeanStd stats = meanStd({1.0, 2.0, 4.0, kNaN});
  CHECK(stats.n == 3);
  CHECK(stats.mean == Approx(7.0 / 3.0));
  // Squares about 7/3: 16/9 + 1/9 + 25/9 = 42/9; / (3 − 1) = 7/3.
  CHECK(stats.std == Approx(std::sqrt(7.0 / 3.0)));
  CHECK(meanStd({5.0}).std == 0.0);
  CHECK(meanStd({}).n == 0);
  CHECK(std::isnan(meanStd({kNaN}).mean));
}

TEST_CASE("bestIndex picks the best validation value, ties to the earliest",
          "[results][aggregate]") {
  CHECK(bestIndex({0.5, 0.7, 0.7, 0.6}, true) == 1);
  CHECK(bestIndex({0.5, 0.3, kNaN, 0.3}, false) == 1);
  CHECK(bestIndex({kNaN, kNaN}, true) == -1);
  CHECK(bestIndex({}, false) == -1);
}

TEST_CASE("deltaM follows REFERENCES.md section 6", "[results][aggregate]") {
  // Accuracy 0.88 vs 0.80 (+10 %, higher is better → −10) and mse 1.2 vs 1.0
  // (+20 %, lower is better → +20): (−10 + 20) / 2 = +5.
  CHECK(deltaM({0.88, 1.2}, {0.80, 1.0}, {true, false}) == Approx(5.0));
  CHECK(deltaM({0.8, 1.0}, {0.8, 1.0}, {true, false}) == Approx(0.0));
  CHECK(std::isnan(deltaM({1.0}, {0.0}, {false})));
  CHECK(std::isnan(deltaM({1.0, 2.0}, {1.0}, {false})));
  CHECK(std::isnan(deltaM({}, {}, {})));
  CHECK(higherIsBetter("accuracy"));
  CHECK_FALSE(higherIsBetter("mse"));
}

TEST_CASE("ranks are competition ranks, lower first, non-finite unranked", "[results][aggregate]") {
  CHECK(ranks({3.0, 1.0, 3.0, kNaN, 2.0}) == std::vector<int>{3, 1, 3, 0, 2});
}

TEST_CASE("compare groups by configuration and computes Δm% per seed", "[results][compare]") {
  // Baseline "fixed": accuracy 0.8 and 0.6 (mean 0.7). "dwa": 0.77 and 0.84,
  // seeds the baseline lacks, so against its mean: Δm per dwa seed =
  // −(0.77 − 0.7)/0.7·100 = −10 and −(0.84 − 0.7)/0.7·100 = −20.
  const std::vector<TrialScore> scores = {score("fixed", 0, {{"a/accuracy", 0.8}, {"a/loss", 0.5}}),
                                          score("fixed", 1, {{"a/accuracy", 0.6}, {"a/loss", 0.5}}),
                                          score("dwa", 2, {{"a/accuracy", 0.77}, {"a/loss", 0.5}}),
                                          score("dwa", 3, {{"a/accuracy", 0.84}, {"a/loss", 0.5}})};
  const Comparison c = compare(scores, CompareOptions{});
  REQUIRE(c.columns == std::vector<std::string>{"a/accuracy"});  // loss left out by default
  REQUIRE(c.rows.size() == 2);
  const ComparisonRow& dwa = c.rows[0];
  const ComparisonRow& fixed = c.rows[1];
  CHECK(dwa.label == "dwa");
  CHECK(fixed.baseline);
  CHECK(fixed.selectedStats.at("a/accuracy").mean == Approx(0.7));
  CHECK(fixed.selectedStats.at("a/accuracy").std == Approx(std::sqrt(0.02)));
  CHECK(dwa.deltaM.mean == Approx(-15.0));
  CHECK(dwa.deltaM.std == Approx(std::sqrt(50.0)));
  CHECK(dwa.pairing == "mean");
  CHECK(fixed.pairing == "seed");
  CHECK(fixed.deltaM.mean == Approx(0.0).margin(1e-12));
  CHECK(dwa.rank == 1);
  CHECK(fixed.rank == 2);
  CHECK_FALSE(dwa.rankTied);

  std::vector<TrialScore> repeated = scores;
  repeated.push_back(score("dwa", 3, {{"a/accuracy", 0.84}}));
  const Comparison twice = compare(repeated, CompareOptions{});
  REQUIRE(twice.notes.size() == 1);
  CHECK_THAT(twice.notes[0], Contains("'dwa' has seed 3 in 2 files, each counted: dwa3, dwa3"));

  CompareOptions lossOnly;
  lossOnly.metrics = {"loss"};
  CHECK(compare(scores, lossOnly).columns == std::vector<std::string>{"a/loss"});
  CompareOptions unknown;
  unknown.metrics = {"f1"};
  CHECK_THROWS_WITH(compare(scores, unknown),
                    Contains("--metric 'f1' names no metric") && Contains("a/accuracy"));
  CompareOptions badBaseline;
  badBaseline.baseline = "gradnorm";
  CHECK_THROWS_WITH(compare(scores, badBaseline),
                    Contains("--baseline 'gradnorm'") && Contains("dwa, fixed"));

  CompareOptions given;
  given.baselineValues = {{"a/accuracy", 0.7}};
  given.baselineDescription = "single-task runs";
  const Comparison g = compare(scores, given);
  CHECK(g.rows[0].deltaM.mean == Approx(-15.0));
  CHECK(g.baseline == "single-task runs");
}

TEST_CASE("a folder of trial files: swept keys, exclusions, truncated file", "[results][compare]") {
  TempDir dir;
  // lr is swept; fixed and dwa at lr 0.1, two seeds each; one failed, one running.
  writeTrial(dir.file("t-fixed-seed0.h5"), "fixed", 0, "0.1", {0.5, 0.6}, {0.50, 0.70});
  writeTrial(dir.file("t-fixed-seed1.h5"), "fixed", 1, "0.1", {0.7, 0.6}, {0.60, 0.65});
  writeTrial(dir.file("t-dwa-seed0.h5"), "dwa", 0, "0.1", {0.6, 0.6}, {0.66, 0.90});
  writeTrial(dir.file("t-dwa-seed1.h5"), "dwa", 1, "0.1", {0.6, 0.8}, {0.60, 0.72});
  writeTrial(dir.file("t-fixed-seed0-lr.h5"), "fixed", 0, "0.01", {0.5, 0.6}, {0.5, 0.6});
  writeTrial(dir.file("t-dwa-seed2.h5"), "dwa", 2, "0.1", {0.1, 0.1}, {0.1, 0.1}, "failed");
  writeTrial(dir.file("t-dwa-seed3.h5"), "dwa", 3, "0.1", {0.1}, {0.1}, "running");
  {
    // A truncated copy of a good file.
    std::ifstream in(dir.file("t-fixed-seed0.h5"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(dir.file("t-truncated.h5"), std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  std::ofstream(dir.file("notes.txt")) << "not a trial";

  const TrialSet set = scanFolder(dir.path());
  CHECK(set.trials.size() == 7);
  REQUIRE(set.unreadable.size() == 1);
  CHECK_THAT(set.unreadable[0].reason, Contains("t-truncated.h5"));
  CHECK(set.sweptKeys == std::vector<std::string>{"strategy.name", "train.lr"});
  CHECK(set.contextKeys == std::vector<std::string>{"train.lr"});
  // No run_name attribute in these files: computed from the swept values.
  CHECK(set.trials[0].runName == "dwa lr=0.1");

  const Comparison c = compareTrialSet(set, dir.path(), CompareOptions{});
  CHECK(c.trialsRead == 8);
  REQUIRE(c.excluded.size() == 3);
  std::string excluded;
  for (const auto& e : c.excluded) excluded += e.path + ": " + e.reason + "\n";
  CHECK_THAT(excluded, Contains("t-truncated.h5: unreadable"));
  CHECK_THAT(excluded, Contains("t-dwa-seed2.h5: failed: loss of task 'a' is NaN at step 1"));
  CHECK_THAT(excluded, Contains("t-dwa-seed3.h5: running"));

  REQUIRE(c.rows.size() == 3);  // (lr 0.01, fixed), (lr 0.1, dwa), (lr 0.1, fixed)
  CHECK(c.rows[0].context ==
        std::vector<std::pair<std::string, std::string>>{{"train.lr", "0.01"}});
  const ComparisonRow& dwa = c.rows[1];
  const ComparisonRow& fixed = c.rows[2];
  REQUIRE(dwa.label == "dwa");
  // Final: dwa 0.90, 0.72; fixed 0.70, 0.65. Best (by val): dwa epoch 0 (tie →
  // earliest) 0.66 and epoch 1 0.72; fixed epoch 1 0.70 and epoch 0 0.60.
  CHECK(dwa.finalStats.at("a/accuracy").mean == Approx(0.81));
  CHECK(dwa.selectedStats.at("a/accuracy").mean == Approx(0.69));
  CHECK(fixed.selectedStats.at("a/accuracy").mean == Approx(0.65));
  // Δm on best values, paired by seed with fixed's 0.70 (seed 0) and 0.60
  // (seed 1): −(0.66−0.70)/0.70·100 and −(0.72−0.60)/0.60·100.
  CHECK(dwa.pairing == "seed");
  CHECK(dwa.deltaM.mean == Approx((0.04 / 0.70 - 0.12 / 0.60) / 2 * 100));
  CHECK(dwa.msPerStep.mean == Approx(15.0));
  CHECK(dwa.secondsPerTrial.mean == Approx(3.0));
  CHECK(c.rows[0].rank == 1);  // alone in its context, its own baseline
  CHECK(c.notes.empty());

  const std::string table = renderComparison(c, ComparisonFormat::kTable);
  CHECK_THAT(table, Contains("Δm% = (1/K)"));
  CHECK_THAT(table, Contains("0.6900 ± 0.0424"));
  CHECK_THAT(table, Contains("not included (3)"));
  const std::string csv = renderComparison(c, ComparisonFormat::kCsv);
  CHECK_THAT(csv, Contains("strategy,train.lr,n,seeds,a/accuracy_final_mean"));
  const std::string json = renderComparison(c, ComparisonFormat::kJson);
  CHECK_THAT(json, Contains("\"strategy\": \"dwa\", \"context\": {\"train.lr\": 0.1}, \"n\": 2"));
  CHECK_THAT(renderComparison(c, ComparisonFormat::kHtml), Contains("<table id=\"comparison\">"));

  SECTION("the tidy export holds exactly the files' numbers") {
    std::ostringstream out;
    const ExportResult result = exportTidy(set, ExportWhat::kEpochs, ExportFormat::kCsv, out);
    CHECK(result.trials == 7);
    CHECK(result.unreadable.size() == 1);
    const std::string text = out.str();
    CHECK(text.rfind("trial,status,config,strategy,seed,strategy.name,train.lr,task,split,step,"
                     "epoch,metric,value\n",
                     0) == 0);
    CHECK_THAT(text, Contains("t-dwa-seed0,completed,dwa,dwa,0,dwa,0.1,a,test,,1,accuracy,0.9\n"));
    CHECK_THAT(text, Contains("t-dwa-seed0,completed,dwa,dwa,0,dwa,0.1,,,,0,seconds,1.5\n"));
    // Per completed two-epoch trial: 2 epochs × (seconds + 3 curves) = 8 rows; the running one has
    // 1 epoch.
    CHECK(result.rows == 6 * 8 + 4);

    std::ostringstream steps;
    exportTidy(set, ExportWhat::kSteps, ExportFormat::kJsonl, steps);
    CHECK_THAT(
        steps.str(),
        Contains("{\"trial\": \"t-dwa-seed0\", \"status\": \"completed\", \"config\": \"dwa\", "
                 "\"strategy\": \"dwa\", \"seed\": 0, \"strategy.name\": \"dwa\", \"train.lr\": "
                 "\"0.1\", \"task\": \"a\", \"split\": \"train\", \"step\": 1, \"epoch\": 1, "
                 "\"metric\": \"loss\", \"value\": 0.8}"));

    std::ostringstream summary;
    const ExportResult s = exportTidy(set, ExportWhat::kSummary, ExportFormat::kCsv, summary);
    CHECK(s.trials == 5);  // completed only
    CHECK_THAT(summary.str(),
               Contains("t-dwa-seed1,completed,dwa,dwa,1,dwa,0.1,a,test,,1,accuracy,best,0.72\n"));
  }
}

TEST_CASE("Δm% pairs seeds with the baseline's where it can; ranks tie unless significant",
          "[results][compare]") {
  // fixed: 0.8, 0.6, 0.7 (seeds 0, 1, 2).
  // paired: each seed 10 % above its baseline seed: Δm −10, −10, −10.
  // close: 9 %, 12 %, 10.5 % above: Δm −9, −12, −10.5, mean −10.5: rank 1.
  // unpaired (seeds 0, 3; the baseline has no seed 3): 0.77 and 0.84
  //   against the baseline's mean 0.7: −10 and −20 → −15 ± 7.07.
  // Ties go by the paired t-test of neighbours' per-seed Δm% (Holm over the
  // neighbouring pairs): unpaired–close share one seed: n/a, no tie; close −
  // paired = 1, −2, −0.5: mean −0.5, sd 1.5, t = −0.577, df 2, p = 1 −
  // |t|/√(t² + 2) = 0.622: tied; paired − fixed = −10 each: p ≈ 0, not tied.
  const std::vector<TrialScore> scores = {
      score("fixed", 0, {{"a/accuracy", 0.8}}),    score("fixed", 1, {{"a/accuracy", 0.6}}),
      score("fixed", 2, {{"a/accuracy", 0.7}}),    score("paired", 0, {{"a/accuracy", 0.88}}),
      score("paired", 1, {{"a/accuracy", 0.66}}),  score("paired", 2, {{"a/accuracy", 0.77}}),
      score("close", 0, {{"a/accuracy", 0.872}}),  score("close", 1, {{"a/accuracy", 0.672}}),
      score("close", 2, {{"a/accuracy", 0.7735}}), score("unpaired", 0, {{"a/accuracy", 0.77}}),
      score("unpaired", 3, {{"a/accuracy", 0.84}})};
  const Comparison c = compare(scores, CompareOptions{});
  REQUIRE(c.rows.size() == 4);
  const ComparisonRow& close = c.rows[0];
  const ComparisonRow& fixed = c.rows[1];
  const ComparisonRow& paired = c.rows[2];
  const ComparisonRow& unpaired = c.rows[3];
  REQUIRE(paired.label == "paired");
  CHECK(paired.pairing == "seed");
  CHECK(paired.deltaM.mean == Approx(-10.0));
  CHECK(paired.deltaM.std == Approx(0.0).margin(1e-9));
  CHECK(close.deltaM.mean == Approx(-10.5));
  CHECK(unpaired.pairing == "mean");
  CHECK(unpaired.deltaM.mean == Approx(-15.0));
  CHECK(unpaired.deltaM.std == Approx(std::sqrt(50.0)));
  CHECK(unpaired.rank == 1);
  CHECK_FALSE(unpaired.rankTied);
  CHECK(close.rank == 2);
  CHECK(paired.rank == 2);
  CHECK(close.rankTied);
  CHECK(paired.rankTied);
  CHECK(fixed.rank == 4);
  CHECK_FALSE(fixed.rankTied);

  // Against the baseline per metric: paired's differences 0.08, 0.06, 0.07
  // (t = 12.12, p = 0.00673), close's 0.072, 0.072, 0.0735 (t = 145, p =
  // 4.756e-5); Holm doubles the smaller: both significantly better.
  const Significance& p = paired.significance.at("a/accuracy");
  CHECK(p.p == Approx(0.0067341).epsilon(1e-4));
  CHECK(p.adjusted == Approx(0.0067341).epsilon(1e-4));
  CHECK(close.significance.at("a/accuracy").adjusted == Approx(2 * 4.7559e-5).epsilon(1e-3));
  CHECK(p.sign == 1);
  CHECK(paired.wins == 1);
  CHECK(paired.ties + paired.losses == 0);
  CHECK(std::isnan(unpaired.significance.at("a/accuracy").p));  // not paired by seed: n/a
  CHECK(unpaired.wins + unpaired.ties + unpaired.losses == 0);

  const std::string table = renderComparison(c, ComparisonFormat::kTable);
  CHECK_THAT(table, Contains("shares its rank, written \"2=\""));
  CHECK_THAT(table, Contains("(pairing: seed), else its mean over seeds (pairing: mean)"));
  CHECK_THAT(table, Contains("Holm-corrected over the configurations × metrics"));
  const auto line = [&](const std::string& start) {
    const std::size_t at = table.find("\n" + start + " ");
    return at == std::string::npos ? std::string()
                                   : table.substr(at + 1, table.find('\n', at + 1) - at - 1);
  };
  CHECK_THAT(line("paired"), Contains("0.7700 ± 0.1100 ▲  -10.00 ± 0.00     seed  1/0/0    2="));
  CHECK_THAT(line("unpaired"), Contains("-15.00 ± 7.07     mean      -     1"));
  CHECK_THAT(line("fixed"), Contains("+0.00 ± 0.00     seed      -     4"));
  const std::string json = renderComparison(c, ComparisonFormat::kJson);
  CHECK_THAT(json, Contains("\"significance\": {\"a/accuracy\": {\"p\": 0.0067") &&
                       Contains("\"result\": \"better\"}}, \"wins\": 1, \"ties\": 0, "
                                "\"losses\": 0, \"rank\": 2, \"rank_tied\": true"));
  const std::string csv = renderComparison(c, ComparisonFormat::kCsv);
  CHECK_THAT(csv, Contains("a/accuracy_p_holm,delta_m_mean,delta_m_std,pairing,wins,ties,losses,"
                           "rank,rank_tied,baseline"));
  // The report's table: best values only (the selection), rows by rank.
  const std::string html = renderComparison(c, ComparisonFormat::kHtml);
  CHECK_THAT(html, Contains("<th>a/accuracy best</th>") && !Contains("<th>a/accuracy final</th>"));
  CHECK(html.find("<td>paired</td>") < html.find("<td>fixed (baseline)</td>"));
  CHECK_THAT(csv, Contains(",mean,,,,1,false,false,"));
}

TEST_CASE("significance: Student's t, the paired test and Holm's adjustment",
          "[results][aggregate]") {
  // Closed forms: df 1, p = 1 − (2/π) atan|t|; df 2, p = 1 − |t|/√(t² + 2).
  CHECK(studentTwoSidedP(1.0, 1.0) == Approx(0.5).epsilon(1e-12));
  CHECK(studentTwoSidedP(-3.0, 1.0) == Approx(1.0 - 2.0 / M_PI * std::atan(3.0)).epsilon(1e-12));
  CHECK(studentTwoSidedP(2.0, 2.0) == Approx(1.0 - 2.0 / std::sqrt(6.0)).epsilon(1e-12));
  // Many degrees of freedom: the normal's 1.959964 → 0.05.
  CHECK(studentTwoSidedP(1.959964, 1e7) == Approx(0.05).epsilon(1e-5));
  CHECK(studentTwoSidedP(0.0, 5.0) == Approx(1.0));
  CHECK(std::isnan(studentTwoSidedP(1.0, 0.0)));
  // d = 1, 2, 3: mean 2, sd 1, t = 2√3, df 2.
  const double t = 2.0 * std::sqrt(3.0);
  CHECK(pairedTTestP({2, 4, 6}, {1, 2, 3}) == Approx(1.0 - t / std::sqrt(t * t + 2.0)));
  CHECK(std::isnan(pairedTTestP({1, 2}, {0, 0})));           // n < 3: n/a
  CHECK(std::isnan(pairedTTestP({1, 2, kNaN}, {0, 0, 0})));  // 2 finite pairs
  CHECK(pairedTTestP({1, 2, 3}, {1, 2, 3}) == 1.0);
  CHECK(pairedTTestP({2, 3, 4}, {1, 2, 3}) == 0.0);
  // Sorted 0.01, 0.03, 0.04 of m = 3: 0.03, max(0.03, 0.06), max(0.06, 0.04).
  const std::vector<double> holm = holmAdjusted({0.04, 0.01, kNaN, 0.03});
  CHECK(holm[0] == Approx(0.06));
  CHECK(holm[1] == Approx(0.03));
  CHECK(std::isnan(holm[2]));
  CHECK(holm[3] == Approx(0.06));
  CHECK(holmAdjusted({0.5, 0.9})[1] == 1.0);  // min(1, ·)
}

TEST_CASE("swept numbers sort by value and are JSON numbers", "[results][compare]") {
  std::vector<TrialScore> scores;
  for (const char* lr : {"1e-2", "3e-3", "1e-3"}) {
    TrialScore s = score("fixed", 0, {{"a/accuracy", 0.8}});
    s.context = {{"train.lr", lr}};
    scores.push_back(s);
  }
  const Comparison c = compare(scores, CompareOptions{});
  REQUIRE(c.rows.size() == 3);
  CHECK(c.rows[0].context[0].second == "1e-3");
  CHECK(c.rows[1].context[0].second == "3e-3");
  CHECK(c.rows[2].context[0].second == "1e-2");
  const std::string json = renderComparison(c, ComparisonFormat::kJson);
  CHECK_THAT(json, Contains("\"context\": {\"train.lr\": 0.001}"));
  CHECK_THAT(json, Contains("\"context\": {\"train.lr\": 0.01}"));
}

TEST_CASE("one configuration and seed in several files is counted once", "[results][compare]") {
  TempDir dir;
  writeTrial(dir.file("a-old.h5"), "fixed", 0, "0.1", {0.5, 0.6}, {0.1, 0.1});
  writeTrial(dir.file("b-other-seed.h5"), "fixed", 1, "0.1", {0.5, 0.6}, {0.5, 0.6});
  // end_time has whole seconds: the second file is newer.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  writeTrial(dir.file("z-new.h5"), "fixed", 0, "0.1", {0.5, 0.6}, {0.5, 0.7});
  fs::copy_file(dir.file("z-new.h5"), dir.file("m-copy.h5"));  // the same end time

  const TrialSet set = scanFolder(dir.path());
  REQUIRE(set.duplicates.size() == 2);
  // Newest end time first, then the first path: m-copy (equal to z-new, before it).
  CHECK(set.duplicates[0].path == dir.file("a-old.h5"));
  CHECK(set.duplicates[0].kept == dir.file("m-copy.h5"));
  CHECK(set.duplicates[1].path == dir.file("z-new.h5"));
  CHECK(set.duplicates[1].kept == dir.file("m-copy.h5"));

  const Comparison c = compareTrialSet(set, dir.path(), CompareOptions{});
  REQUIRE(c.rows.size() == 1);
  CHECK(c.rows[0].paths ==
        std::vector<std::string>{dir.file("b-other-seed.h5"), dir.file("m-copy.h5")});
  CHECK(c.excluded.empty());
  const std::string table = renderComparison(c, ComparisonFormat::kTable);
  CHECK_THAT(table, Contains("a-old.h5 repeats the configuration and seed of " +
                             dir.file("m-copy.h5") + ": counted once"));
  CHECK_THAT(renderComparison(c, ComparisonFormat::kJson), Contains("\"duplicates\": ["));

  std::ostringstream summary;
  const ExportResult s = exportTidy(set, ExportWhat::kSummary, ExportFormat::kCsv, summary);
  CHECK(s.trials == 2);
  CHECK_THAT(summary.str(), !Contains("a-old") && !Contains("z-new"));
}

TEST_CASE("flattenConfig turns YAML into key paths", "[results][compare]") {
  const auto flat = flattenConfig("a: 1\nb: {c: [1, 2], d: {e: x}}\nf: {}\n");
  CHECK(flat.at("a") == "1");
  CHECK(flat.at("b.c") == "[1, 2]");
  CHECK(flat.at("b.d.e") == "x");
  CHECK(flat.at("f") == "{}");
  CHECK_THROWS_WITH(flattenConfig("- 1\n- 2\n"), "not a YAML mapping");
}

TEST_CASE("compare takes each metric's direction from the file, not from its name",
          "[results][comparison]") {
  // The files say accuracy is lower-is-better (as a file of a kind with an
  // error-like metric would): the best epoch is the smallest validation
  // value, and Δm% counts an increase as worse.
  TempDir dir;
  const std::string lower = "a/accuracy=lower,a/loss=lower";
  writeTrial(dir.file("t-fixed-seed0.h5"), "fixed", 0, "0.1", {0.5, 0.6}, {0.5, 0.6}, "completed",
             lower);
  writeTrial(dir.file("t-dwa-seed0.h5"), "dwa", 0, "0.1", {0.7, 0.6}, {0.8, 0.9}, "completed",
             lower);
  const Comparison c = compareTrialSet(scanFolder(dir.path()), dir.path(), CompareOptions{});
  REQUIRE(c.rows.size() == 2);
  const ComparisonRow& dwa = c.rows[0].label == "dwa" ? c.rows[0] : c.rows[1];
  const ComparisonRow& fixed = c.rows[0].label == "dwa" ? c.rows[1] : c.rows[0];
  // fixed: val minimum at epoch 0 → test 0.5; dwa: at epoch 1 → test 0.9.
  CHECK(fixed.selectedStats.at("a/accuracy").mean == Approx(0.5));
  CHECK(dwa.selectedStats.at("a/accuracy").mean == Approx(0.9));
  // Δm% = +(0.9 − 0.5)/0.5 · 100 (lower is better: an increase is worse).
  // The name alone (accuracy: higher) would pick epochs 1 and 0: 0.6, 0.8.
  CHECK(dwa.deltaM.mean == Approx(80.0));
}

namespace {

/// A trial with curves: per column its validation and test values per epoch
/// (epochs 0, 1, ...), directions from the metric names.
TrialScore curves(
    const std::string& label, int64_t seed,
    const std::map<std::string, std::pair<std::vector<double>, std::vector<double>>>& columns) {
  TrialScore s;
  s.path = label + std::to_string(seed);
  s.label = label;
  s.seed = seed;
  for (const auto& [column, curve] : columns) {
    s.validationCurves[column] = curve.first;
    s.testCurves[column] = curve.second;
    s.finalValues[column] = curve.second.back();
    const bool higher = higherIsBetter(column.substr(column.rfind('/') + 1));
    s.higherIsBetter[column] = higher;
    const std::ptrdiff_t best = bestIndex(curve.first, higher);
    s.bestValues[column] = curve.second[static_cast<std::size_t>(best)];
    s.bestEpochs[column] = best;
    s.epochs.resize(curve.second.size());
    for (std::size_t e = 0; e < s.epochs.size(); ++e) s.epochs[e] = static_cast<int64_t>(e);
  }
  s.msPerStep = 1.0;
  return s;
}

CompareOptions selecting(const std::string& selection) {
  CompareOptions options;
  options.selection = parseSelection(selection);
  return options;
}

}  // namespace

TEST_CASE("compare --select: final, best per metric, best:METRIC, best:delta_m, last:k",
          "[results][compare][select]") {
  // Two tasks over four epochs; validation peaks at epoch 1 for a, epoch 2
  // for b.
  const TrialScore trial = curves("dwa", 0,
                                  {{"a/accuracy", {{0.5, 0.9, 0.6, 0.7}, {0.50, 0.80, 0.60, 0.65}}},
                                   {"b/mse", {{4.0, 3.0, 1.0, 2.0}, {4.5, 3.5, 1.5, 2.5}}}});
  SECTION("best: each metric at its own validation epoch") {
    const SelectedValues v = selectOwn(trial, parseSelection("best"));
    CHECK(v.values.at("a/accuracy") == 0.80);
    CHECK(v.values.at("b/mse") == 1.5);
    CHECK(v.epochs == "a/accuracy@1 b/mse@2");
  }
  SECTION("final: the last epoch") {
    const SelectedValues v = selectOwn(trial, parseSelection("final"));
    CHECK(v.values.at("a/accuracy") == 0.65);
    CHECK(v.epochs == "3");
  }
  SECTION("best:b/mse: every metric at b's best validation epoch") {
    const SelectedValues v = selectOwn(trial, parseSelection("best:b/mse"));
    CHECK(v.values.at("a/accuracy") == 0.60);
    CHECK(v.values.at("b/mse") == 1.5);
    CHECK(v.epochs == "2");
  }
  SECTION("last:2: the mean of the last two epochs; last:9 all four") {
    const SelectedValues v = selectOwn(trial, parseSelection("last:2"));
    CHECK(v.values.at("a/accuracy") == Approx(0.625));
    CHECK(v.values.at("b/mse") == Approx(2.0));
    CHECK(v.epochs == "2-3");
    CHECK(selectOwn(trial, parseSelection("last:9")).values.at("b/mse") == Approx(3.0));
  }
  SECTION("best:delta_m: the epoch of the lowest validation Δm% against the same seed's baseline") {
    // The baseline's validation: a 0.5 every epoch, b 2.0 every epoch.
    // dwa's validation Δm% per epoch: e0 (−0 + 100)/2 = 50; e1 (−80 + 50)/2 =
    // −15; e2 (−20 − 50)/2 = −35; e3 (−40 + 0)/2 = −20: epoch 2.
    const TrialScore fixed = curves("fixed", 0,
                                    {{"a/accuracy", {{0.5, 0.5, 0.5, 0.5}, {0.5, 0.5, 0.5, 0.5}}},
                                     {"b/mse", {{2.0, 2.0, 2.0, 2.0}, {2.0, 2.0, 2.0, 2.0}}}});
    const Comparison c = compare({trial, fixed}, selecting("best:delta_m"));
    REQUIRE(c.rows.size() == 2);
    const ComparisonRow& dwa = c.rows[0];
    REQUIRE(dwa.label == "dwa");
    CHECK(dwa.chosen.at(0).epochs == "2");
    CHECK(dwa.selectedStats.at("a/accuracy").mean == 0.60);
    CHECK(dwa.selectedStats.at("b/mse").mean == 1.5);
    // Test Δm% at those epochs: baseline (its own last epoch is its
    // reference, constant: epoch 0) 0.5 and 2.0: (−20 − 25)/2 = −22.5.
    CHECK(c.rows[1].chosen.at(0).epochs == "0");
    CHECK(dwa.deltaM.mean == Approx(-22.5));
    // The listing after the table names each trial's epoch.
    const std::string table = renderComparison(c, ComparisonFormat::kTable);
    CHECK_THAT(table, Contains("epochs chosen (best:delta_m):\n  dwa: seed 0 → 2\n"));
    CHECK_THAT(
        renderComparison(c, ComparisonFormat::kJson),
        Contains("\"chosen_epochs\": [{\"file\": \"dwa0\", \"seed\": 0, \"epochs\": \"2\"}]"));
  }
  SECTION("best:delta_m without the baseline: no epoch, said so") {
    const Comparison c = compare({trial}, selecting("best:delta_m"));
    CHECK(c.rows.at(0).chosen.at(0).epochs == "-");
    CHECK(c.rows.at(0).selectedStats.at("a/accuracy").n == 0);
    CHECK_THAT(c.notes.at(0), Contains("best:delta_m: no 'fixed' trials"));
  }
  SECTION("the selection is named in every output") {
    const Comparison c = compare({trial}, selecting("last:2"));
    CHECK_THAT(renderComparison(c, ComparisonFormat::kTable),
               Contains("a/accuracy last") && Contains("mean of the last 2 epochs"));
    CHECK_THAT(renderComparison(c, ComparisonFormat::kCsv), Contains("a/accuracy_last_mean"));
    CHECK_THAT(renderComparison(c, ComparisonFormat::kJson),
               Contains("\"selection\": \"last:2\"") && Contains("\"last\": {"));
  }
  SECTION("unknown forms are refused") {
    CHECK_THROWS_WITH(parseSelection("median"), Contains("unknown --select 'median'"));
    CHECK_THROWS_WITH(parseSelection("last:0"), Contains("last: takes a count of epochs >= 1"));
    CHECK_THROWS_WITH(parseSelection("best:accuracy"), Contains("TASK/METRIC"));
    CHECK_THROWS_WITH(compare({trial}, selecting("best:c/accuracy")),
                      Contains("no trial has the metric 'c/accuracy'"));
  }
}

TEST_CASE("Δm% averaged per task first (LibMTL) or flat", "[results][aggregate]") {
  // Task a: accuracy +10 % (→ −10) and mae +30 % (→ +30): its mean +10;
  // task b: mse +20 % (→ +20). Per task (10 + 20)/2 = 15; flat (−10 + 30 + 20)/3 = 13.33.
  const std::vector<double> values = {0.88, 1.3, 1.2}, base = {0.8, 1.0, 1.0};
  const std::vector<bool> higher = {true, false, false};
  CHECK(deltaMByTask(values, base, higher, {"a", "a", "b"}) == Approx(15.0));
  CHECK(deltaM(values, base, higher) == Approx(40.0 / 3.0));
  CHECK(std::isnan(deltaMByTask(values, base, higher, {"a", "b"})));
  CompareOptions options;
  options.deltaMByTask = true;
  const Comparison c =
      compare({score("fixed", 0, {{"a/accuracy", 0.8}, {"a/mae", 1.0}, {"b/mse", 1.0}}),
               score("dwa", 0, {{"a/accuracy", 0.88}, {"a/mae", 1.3}, {"b/mse", 1.2}})},
              options);
  CHECK(c.rows.at(0).deltaM.mean == Approx(15.0));
  CHECK_THAT(renderComparison(c, ComparisonFormat::kTable), Contains("(1/T) Σ_t (1/K_t)"));
}

TEST_CASE(
    "compare --baseline stl: each task's metrics from its own single-task trial of the same seed",
    "[results][compare][stl]") {
  // Single-task trials: a's accuracy 0.8, 0.6, 0.7 (seeds 0-2) and b's mse
  // 2, 4, 3; each also logs the other task's metrics from an untrained head
  // (9.0: left out). fixed: a 0.88, 0.66, 0.77 (+10 % → −10) and b 2.4, 4.8,
  // 3.6 (+20 % → +20): Δm = (−10 + 20)/2 = +5 at every seed, paired.
  auto single = [](const std::string& task, int64_t seed, double a, double b) {
    TrialScore s = score("stl task=" + task, seed, {{"a/accuracy", a}, {"b/mse", b}});
    s.singleTask = task;
    return s;
  };
  const std::vector<TrialScore> scores = {
      single("a", 0, 0.8, 9.0),
      single("a", 1, 0.6, 9.0),
      single("a", 2, 0.7, 9.0),
      single("b", 0, 9.0, 2.0),
      single("b", 1, 9.0, 4.0),
      single("b", 2, 9.0, 3.0),
      score("fixed", 0, {{"a/accuracy", 0.88}, {"b/mse", 2.4}}),
      score("fixed", 1, {{"a/accuracy", 0.66}, {"b/mse", 4.8}}),
      score("fixed", 2, {{"a/accuracy", 0.77}, {"b/mse", 3.6}})};
  CompareOptions options;
  options.baseline = "stl";
  const Comparison c = compare(scores, options);
  REQUIRE(c.rows.size() == 2);
  const ComparisonRow& fixed = c.rows[0];
  const ComparisonRow& stl = c.rows[1];
  REQUIRE(stl.label == "stl");
  CHECK(stl.baseline);
  CHECK(stl.paths.size() == 3);
  CHECK(stl.paths[0] == "stl task=a0 + stl task=b0");
  CHECK(stl.selectedStats.at("a/accuracy").mean == Approx(0.7));
  CHECK(stl.selectedStats.at("b/mse").mean == Approx(3.0));
  CHECK(fixed.pairing == "seed");
  CHECK(fixed.deltaM.mean == Approx(5.0));
  CHECK(fixed.deltaM.std == Approx(0.0).margin(1e-9));
  CHECK_THAT(c.notes.at(0), Contains("baseline stl: the single-task trials of a, b combined") &&
                                Contains("(seeds 0 1 2)"));

  SECTION("without --baseline stl, a single-task row shows its own task only") {
    const Comparison plain = compare(scores, CompareOptions{});
    REQUIRE(plain.rows.size() == 3);
    const ComparisonRow& a = plain.rows[1];
    REQUIRE(a.label == "stl task=a");
    CHECK(a.selectedStats.at("a/accuracy").mean == Approx(0.7));
    CHECK(a.selectedStats.at("b/mse").n == 0);
  }
  SECTION("a task without a single-task trial: said, and no Δm%") {
    std::vector<TrialScore> onlyA(scores.begin(), scores.begin() + 3);
    onlyA.insert(onlyA.end(), scores.begin() + 6, scores.end());
    const Comparison partial = compare(onlyA, options);
    CHECK_THAT(partial.notes.at(0), Contains("no single-task trial of b: Δm% not computed"));
    CHECK(partial.rows.at(0).deltaM.n == 0);
  }
}

TEST_CASE("cross-validation folds are replicates: paired by seed and fold, averaged",
          "[results][compare][cross_validation]") {
  // One seed, three folds: fixed 0.8, 0.6, 0.7; dwa 10 % above each fold's:
  // paired by (seed, fold), Δm −10 on every fold, n = 3.
  auto fold = [](const std::string& label, int64_t f, double accuracy) {
    TrialScore s = score(label, 0, {{"a/accuracy", accuracy}});
    s.fold = f;
    s.path += "f" + std::to_string(f);
    return s;
  };
  const Comparison c = compare({fold("fixed", 0, 0.8), fold("fixed", 1, 0.6), fold("fixed", 2, 0.7),
                                fold("dwa", 0, 0.88), fold("dwa", 1, 0.66), fold("dwa", 2, 0.77)},
                               CompareOptions{});
  REQUIRE(c.rows.size() == 2);
  const ComparisonRow& dwa = c.rows[0];
  CHECK(dwa.paths.size() == 3);
  CHECK(dwa.pairing == "seed");
  CHECK(dwa.deltaM.mean == Approx(-10.0));
  CHECK(dwa.deltaM.n == 3);
  CHECK(c.notes.empty());  // three folds of seed 0 are no duplicate seed
  CHECK_THAT(renderComparison(c, ComparisonFormat::kTable),
             Contains("cross-validation: every fold is a replicate"));
}
