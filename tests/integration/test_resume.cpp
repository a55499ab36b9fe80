// Checkpoints on the real trainer: a trial interrupted after a checkpoint and
// continued from it logs exactly — bit for bit — what an uninterrupted run
// logs from that point on, for every registered strategy (so every
// strategy's state() / loadState() round trip is complete).
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "framework/checkpoint.h"
#include "framework/experiment.h"
#include "framework/trainer.h"
#include "models/registry.h"
#include "strategies/registry.h"
#include "tests/support/architectures.h"
#include "tests/support/memory_log.h"

using namespace fulcrum;
using fulcrum::testing::MemoryLog;
namespace fs = std::filesystem;

namespace {

// 4 steps per epoch, 3 epochs, gradient diagnostics every 3 steps, a
// checkpoint after every epoch.
const char* kToy = R"(
seed: 5
data: {kind: gradnorm_toy, tasks: 3, input_dim: 12, output_dim: 4, train_size: 96, val_size: 16, test_size: 16}
model: {trunk: {kind: mlp, hidden: [16, 8]}}
train: {epochs: 3, batch_size: 16, max_steps_per_epoch: 4, log_gradients_every: 3, checkpoint_every: 1,
        optimizer: {kind: adam, lr: 0.01}}
strategy: {name: fixed}
)";

/// A scratch folder removed at the end of the test.
struct Scratch {
  fs::path path;
  Scratch() : path(fs::temp_directory_path() / ("fulcrum-resume-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Scratch() { fs::remove_all(path); }
};

struct Run {
  MemoryLog log;
  TrialResult result;
};

/// Trains `spec`, checkpointing to `checkpoint`; stops before step
/// `stopBefore` (counted from the run's first step) when it is ≥ 0.
Run runTrial(const ExperimentSpec& spec, const MultiTaskData& data, const std::string& checkpoint,
             bool resume, int64_t stopBefore = -1, int64_t pauseAfter = 0) {
  auto strategy = makeStrategy(spec.strategy, spec.tasks);
  TrainHooks hooks;
  hooks.checkpointPath = checkpoint;
  hooks.resume = resume;
  hooks.pauseAfterEpoch = pauseAfter;
  int64_t polls = 0;
  if (stopBefore >= 0) hooks.stopRequested = [&polls, stopBefore] { return polls++ == stopBefore; };
  Run run;
  run.result = train(spec, data, *makeModel(spec, data.inputShape), *strategy, run.log, {}, hooks);
  return run;
}

bool sameBits(const std::vector<double>& a, const std::vector<double>& b) {
  // memcmp must not see the null data() of an empty vector.
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

bool sameBits(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

/// Everything but the timings of `resumed` equals `full` from the same step on.
void requireContinuation(const MemoryLog& full, const MemoryLog& resumed) {
  const int64_t firstStep = resumed.description.resumeStep;
  const int64_t firstEpoch = resumed.description.resumeEpoch;
  REQUIRE(resumed.steps.size() + static_cast<std::size_t>(firstStep) == full.steps.size());
  for (std::size_t k = 0; k < resumed.steps.size(); ++k) {
    const StepRecord& a = full.steps[static_cast<std::size_t>(firstStep) + k];
    const StepRecord& b = resumed.steps[k];
    INFO("step " << a.step);
    CHECK(a.step == b.step);
    CHECK(a.epoch == b.epoch);
    CHECK(sameBits(a.losses, b.losses));
    CHECK(sameBits(a.weights, b.weights));
    CHECK(sameBits(a.diagnostics, b.diagnostics));
  }
  REQUIRE(resumed.epochs.size() + static_cast<std::size_t>(firstEpoch) == full.epochs.size());
  for (std::size_t k = 0; k < resumed.epochs.size(); ++k) {
    const EpochRecord& a = full.epochs[static_cast<std::size_t>(firstEpoch) + k];
    const EpochRecord& b = resumed.epochs[k];
    INFO("epoch " << a.epoch);
    CHECK(a.epoch == b.epoch);
    REQUIRE(a.values.size() == b.values.size());
    for (std::size_t s = 0; s < a.values.size(); ++s) {
      for (std::size_t t = 0; t < a.values[s].size(); ++t)
        CHECK(sameBits(a.values[s][t], b.values[s][t]));
    }
  }
  std::vector<GradientRecord> expected;
  for (const GradientRecord& r : full.gradientRecords) {
    if (r.step >= firstStep) expected.push_back(r);
  }
  REQUIRE(resumed.gradientRecords.size() == expected.size());
  for (std::size_t k = 0; k < expected.size(); ++k) {
    INFO("gradient record of step " << expected[k].step);
    CHECK(expected[k].step == resumed.gradientRecords[k].step);
    CHECK(sameBits(expected[k].norms, resumed.gradientRecords[k].norms));
    CHECK(sameBits(expected[k].cosines, resumed.gradientRecords[k].cosines));
    CHECK(sameBits(expected[k].directionNorm, resumed.gradientRecords[k].directionNorm));
    CHECK(sameBits(expected[k].stepNorm, resumed.gradientRecords[k].stepNorm));
  }
}

/// Trains `spec` (3 epochs of 4 steps) straight through and again stopped at
/// step 6 then resumed from the epoch-1 checkpoint (files `stem`.ckpt and
/// `stem`-full.ckpt): the resumed run continues the straight one bit for bit.
void requireStopAndResume(const ExperimentSpec& spec, const fs::path& stem) {
  const MultiTaskData data = loadData(spec);
  const std::string checkpoint = stem.string() + ".ckpt";
  const Run full = runTrial(spec, data, stem.string() + "-full.ckpt", false);
  INFO(full.log.error);
  REQUIRE(full.result.status == "completed");
  REQUIRE(full.log.steps.size() == 12);
  const Run stopped = runTrial(spec, data, checkpoint, false, 6);
  REQUIRE(stopped.result.error == "interrupted at step 6");
  const Run resumed = runTrial(spec, data, checkpoint, true);
  INFO(resumed.log.error);
  REQUIRE(resumed.result.status == "completed");
  CHECK(resumed.log.description.resumeStep == 4);
  requireContinuation(full.log, resumed.log);
}

}  // namespace

TEST_CASE("resume: every strategy continues bit for bit from its checkpoint",
          "[integration][checkpoint]") {
  Scratch scratch;
  for (const auto& row : strategyTable()) {
    DYNAMIC_SECTION(row.name) {
      const ExperimentSpec spec =
          parseExperiment(kToy, "resume.yaml", {"strategy={name: " + row.name + "}"});
      const MultiTaskData data = loadData(spec);
      const std::string checkpoint = (scratch.path / (row.name + ".ckpt")).string();

      const Run full =
          runTrial(spec, data, (scratch.path / (row.name + "-full.ckpt")).string(), false);
      INFO(full.log.error);
      REQUIRE(full.result.status == "completed");
      REQUIRE(full.log.steps.size() == 12);
      CHECK_FALSE(fs::exists(scratch.path / (row.name + "-full.ckpt")));  // removed on completion

      // Stopped in the second epoch (step 6): the checkpoint after epoch 1 stays.
      const Run stopped = runTrial(spec, data, checkpoint, false, 6);
      REQUIRE(stopped.result.status == "failed");
      REQUIRE(stopped.result.error == "interrupted at step 6");
      REQUIRE(fs::exists(checkpoint));

      const Run resumed = runTrial(spec, data, checkpoint, true);
      INFO(resumed.log.error);
      REQUIRE(resumed.result.status == "completed");
      CHECK(resumed.result.steps == 12);
      CHECK(resumed.log.description.resumeStep == 4);
      CHECK(resumed.log.description.resumeEpoch == 1);
      CHECK(resumed.log.description.integers.at("resumed_from_epoch") == 1);
      requireContinuation(full.log, resumed.log);
      CHECK_FALSE(fs::exists(checkpoint));
    }
  }
}

TEST_CASE("resume: every architecture continues bit for bit from its checkpoint",
          "[integration][checkpoint][models]") {
  // Each architecture's parameters, its own losses' curves and the features
  // a representation strategy acts on survive the round trip: uncertainty
  // (a loss weighting with its own parameters) and MGDA on the features where
  // the architecture has them.
  Scratch scratch;
  const testing::TemporaryFunnel funnel("resume", 120, 12, 3);
  int index = 0;
  for (const testing::TinyArchitecture& model : testing::tinyArchitectures()) {
    std::string text = kToy;
    if (model.binaryTasks) {  // the funnel's 96 training rows in place of the toy's
      const std::size_t data = text.find("data:");
      text.replace(data, text.find('\n', data) + 1 - data, funnel.yaml);
    }
    for (const char* strategy :
         {"{name: uncertainty}", "{name: mgda, gradients: representation}"}) {
      const std::string stem = "architecture" + std::to_string(index++);
      DYNAMIC_SECTION(model.model << " × " << strategy) {
        const ExperimentSpec spec = parseExperiment(
            text, "resume.yaml", {"model=" + model.model, std::string("strategy=") + strategy});
        if (!planModel(spec).provides.features &&
            std::string(strategy).find("representation") != std::string::npos)
          continue;  // refused at validation (the strategy matrix checks that)
        requireStopAndResume(spec, scratch.path / stem);
      }
    }
  }
}

TEST_CASE("resume: dense tasks on segnet continue bit for bit (BatchNorm statistics too)",
          "[integration][checkpoint][dense]") {
  Scratch scratch;
  registerFileDatasets();  // data.kind: dense_fashion
  const char* dense = R"(
seed: 2
data: {kind: dense_fashion, size: 16, items: 1, min_side: 8, max_side: 12,
       train_size: 64, val_size: 8, test_size: 8}
model: {trunk: {kind: segnet, filters: [4, 8]}}
train: {epochs: 3, batch_size: 16, max_steps_per_epoch: 4, log_gradients_every: 3,
        checkpoint_every: 1, optimizer: {kind: adam, lr: 0.01}}
strategy: {name: fixed}
)";
  for (const char* strategy : {"{name: uncertainty}", "{name: pcgrad}"}) {
    DYNAMIC_SECTION(strategy) {
      const ExperimentSpec spec =
          parseExperiment(dense, "resume.yaml", {std::string("strategy=") + strategy});
      requireStopAndResume(spec, scratch.path / "dense");
    }
  }
}

TEST_CASE("resume: the schedule's, clipping's and early stopping's state continue bit for bit",
          "[integration][checkpoint][schedule]") {
  // The validation loss falls; watched for a maximum with patience 0 the
  // plateau halves the rate after epoch 2, so epoch 3 (after the resume)
  // runs at the restored rate, not the base one; early stopping's best and
  // count continue too (patience 5: it does not stop here).
  Scratch scratch;
  const ExperimentSpec spec = parseExperiment(
      kToy, "resume.yaml",
      {"train.scheduler={kind: plateau, metric: loss, mode: max, patience: 0, factor: 0.5}",
       "train.early_stopping={metric: task0/mse, patience: 5}", "train.clip={norm: 0.5}",
       "train.regularization={shared: {l2: 0.001}, tasks: {l1: 0.001}}", "train.epochs=4"});
  const MultiTaskData data = loadData(spec);
  const std::string checkpoint = (scratch.path / "protocol.ckpt").string();
  const Run full = runTrial(spec, data, (scratch.path / "protocol-full.ckpt").string(), false);
  INFO(full.log.error);
  REQUIRE(full.result.status == "completed");
  const auto& names = full.log.description.diagnostics;
  const std::size_t lr = std::find(names.begin(), names.end(), "lr") - names.begin();
  REQUIRE(lr < names.size());
  CHECK(full.log.steps[11].diagnostics[lr] == 0.005);  // epoch 3: halved once
  CHECK(full.log.steps[15].diagnostics[lr] == 0.0025);
  const Run stopped = runTrial(spec, data, checkpoint, false, 10);  // in epoch 3
  REQUIRE(stopped.result.error == "interrupted at step 10");
  const Run resumed = runTrial(spec, data, checkpoint, true);
  INFO(resumed.log.error);
  REQUIRE(resumed.result.status == "completed");
  CHECK(resumed.log.description.resumeStep == 8);
  requireContinuation(full.log, resumed.log);
}

TEST_CASE("resume: without a checkpoint the trial starts at step 0", "[integration][checkpoint]") {
  Scratch scratch;
  const ExperimentSpec spec = parseExperiment(kToy, "resume.yaml", {"strategy={name: dwa}"});
  const MultiTaskData data = loadData(spec);
  const Run run = runTrial(spec, data, (scratch.path / "none.ckpt").string(), true);
  REQUIRE(run.result.status == "completed");
  CHECK(run.log.description.resumeStep == 0);
  CHECK(run.log.steps.size() == 12);
}

TEST_CASE("resume: checkpoint_every sets the epochs checkpointed; 0 writes none",
          "[integration][checkpoint]") {
  Scratch scratch;
  const std::string checkpoint = (scratch.path / "t.ckpt").string();
  SECTION("0: none") {
    const ExperimentSpec spec = parseExperiment(kToy, "resume.yaml", {"train.checkpoint_every=0"});
    const MultiTaskData data = loadData(spec);
    runTrial(spec, data, checkpoint, false, 10);
    CHECK_FALSE(fs::exists(checkpoint));
  }
  SECTION("2: after the second epoch, not the first") {
    const ExperimentSpec spec =
        parseExperiment(kToy, "resume.yaml", {"train.checkpoint_every=2", "train.epochs=4"});
    const MultiTaskData data = loadData(spec);
    runTrial(spec, data, checkpoint, false, 6);
    CHECK_FALSE(fs::exists(checkpoint));
    runTrial(spec, data, checkpoint, false, 10);
    REQUIRE(fs::exists(checkpoint));
    const Run resumed = runTrial(spec, data, checkpoint, true);
    REQUIRE(resumed.result.status == "completed");
    CHECK(resumed.log.description.resumeEpoch == 2);
    CHECK(resumed.log.steps.size() == 8);
  }
}

TEST_CASE("resume: a trial paused at a halving rung continues bit for bit",
          "[integration][checkpoint]") {
  Scratch scratch;
  const std::string checkpoint = (scratch.path / "t.ckpt").string();
  // checkpoint_every: 0 writes no checkpoint of its own; the pause writes one.
  const ExperimentSpec spec = parseExperiment(
      kToy, "resume.yaml", {"train.checkpoint_every=0", "train.epochs=4", "strategy={name: dwa}"});
  const MultiTaskData data = loadData(spec);
  const Run full = runTrial(spec, data, (scratch.path / "full.ckpt").string(), false);
  REQUIRE(full.result.status == "completed");

  const Run first = runTrial(spec, data, checkpoint, false, -1, 1);
  CHECK(first.result.status == "paused");
  CHECK(first.log.status == "paused");
  CHECK(first.log.error == "paused after epoch 1 of 4");
  CHECK(first.log.epochs.size() == 1);
  REQUIRE(fs::exists(checkpoint));
  // Asked to pause where it already is: it ends paused at once, nothing trained.
  const Run again = runTrial(spec, data, checkpoint, true, -1, 1);
  CHECK(again.result.status == "paused");
  CHECK(again.log.steps.empty());
  const Run second = runTrial(spec, data, checkpoint, true, -1, 2);
  CHECK(second.result.status == "paused");
  CHECK(second.log.description.resumeEpoch == 1);
  CHECK(second.log.epochs.size() == 1);
  const Run last = runTrial(spec, data, checkpoint, true);
  REQUIRE(last.result.status == "completed");
  CHECK(last.log.description.resumeEpoch == 2);
  requireContinuation(full.log, last.log);
  CHECK_FALSE(fs::exists(checkpoint));  // removed once completed
}

TEST_CASE("resume: an unusable checkpoint is refused before anything is logged",
          "[integration][checkpoint]") {
  Scratch scratch;
  const std::string checkpoint = (scratch.path / "t.ckpt").string();
  const ExperimentSpec spec = parseExperiment(kToy, "resume.yaml");
  const MultiTaskData data = loadData(spec);
  runTrial(spec, data, checkpoint, false, 6);
  REQUIRE(fs::exists(checkpoint));

  auto refused = [&](const ExperimentSpec& other, const std::string& message) {
    auto strategy = makeStrategy(other.strategy, other.tasks);
    MemoryLog log;
    TrainHooks hooks;
    hooks.checkpointPath = checkpoint;
    hooks.resume = true;
    REQUIRE_THROWS_WITH(
        train(other, data, *makeModel(other, data.inputShape), *strategy, log, {}, hooks),
        Catch::Contains(message));
    CHECK_FALSE(log.begun);
  };
  SECTION("another configuration") {
    refused(parseExperiment(kToy, "resume.yaml", {"train.optimizer.lr=0.02"}),
            "another configuration");
  }
  SECTION("not a checkpoint") {
    std::ofstream(checkpoint) << "not a checkpoint";
    refused(spec, "cannot read checkpoint '" + checkpoint + "'");
  }
}

TEST_CASE("resume: a checkpoint with a flipped byte region is refused or continues bit for bit",
          "[integration][checkpoint]") {
  // LibTorch 1.13 does not check the CRCs of the zip archive; fulcrum's
  // trailer must catch a flip anywhere, tensor data included.
  Scratch scratch;
  const std::string checkpoint = (scratch.path / "t.ckpt").string();
  const ExperimentSpec spec = parseExperiment(kToy, "resume.yaml");
  const MultiTaskData data = loadData(spec);
  const Run full = runTrial(spec, data, (scratch.path / "full.ckpt").string(), false);
  REQUIRE(full.result.status == "completed");
  runTrial(spec, data, checkpoint, false, 6);
  REQUIRE(fs::exists(checkpoint));
  std::string original;
  {
    std::ifstream in(checkpoint, std::ios::binary);
    original.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  REQUIRE(original.size() > 1000);
  constexpr std::size_t kRegions = 64, kRegionBytes = 4;
  int refused = 0;
  for (std::size_t r = 0; r < kRegions; ++r) {
    // Spread over the file, the last region ending at its last byte.
    const std::size_t offset = r * (original.size() - kRegionBytes) / (kRegions - 1);
    std::string damaged = original;
    for (std::size_t i = offset; i < offset + kRegionBytes; ++i)
      damaged[i] = static_cast<char>(damaged[i] ^ 0x5a);
    std::ofstream(checkpoint, std::ios::binary | std::ios::trunc) << damaged;
    INFO("bytes " << offset << " to " << offset + kRegionBytes - 1 << " of " << original.size()
                  << " flipped");
    auto strategy = makeStrategy(spec.strategy, spec.tasks);
    TrainHooks hooks;
    hooks.checkpointPath = checkpoint;
    hooks.resume = true;
    Run resumed;
    try {
      resumed.result =
          train(spec, data, *makeModel(spec, data.inputShape), *strategy, resumed.log, {}, hooks);
    } catch (const CheckpointError& e) {
      ++refused;
      CHECK_THAT(e.what(), Catch::Contains("checkpoint '" + checkpoint + "'"));
      CHECK_FALSE(resumed.log.begun);
      continue;
    }
    REQUIRE(resumed.result.status == "completed");
    requireContinuation(full.log, resumed.log);
  }
  CHECK(refused == static_cast<int>(kRegions));  // every byte is covered by the checksum

  SECTION("the message names the mismatch") {
    std::string damaged = original;
    damaged[original.size() / 2] = static_cast<char>(damaged[original.size() / 2] ^ 1);
    std::ofstream(checkpoint, std::ios::binary | std::ios::trunc) << damaged;
    auto strategy = makeStrategy(spec.strategy, spec.tasks);
    MemoryLog log;
    TrainHooks hooks;
    hooks.checkpointPath = checkpoint;
    hooks.resume = true;
    REQUIRE_THROWS_WITH(
        train(spec, data, *makeModel(spec, data.inputShape), *strategy, log, {}, hooks),
        Catch::Contains("cannot read checkpoint '" + checkpoint + "': damaged: CRC-32 "));
  }
}

TEST_CASE("resume: a trial continues with its checkpoint's thread count",
          "[integration][checkpoint]") {
  Scratch scratch;
  const std::string checkpoint = (scratch.path / "t.ckpt").string();
  const ExperimentSpec spec = parseExperiment(kToy, "resume.yaml", {"train.threads=1"});
  const MultiTaskData data = loadData(spec);
  const Run full = runTrial(spec, data, (scratch.path / "full.ckpt").string(), false);
  REQUIRE(full.result.status == "completed");
  runTrial(spec, data, checkpoint, false, 6);
  REQUIRE(fs::exists(checkpoint));

  const ExperimentSpec other = parseExperiment(kToy, "resume.yaml", {"train.threads=2"});
  auto strategy = makeStrategy(other.strategy, other.tasks);
  TrainHooks hooks;
  hooks.checkpointPath = checkpoint;
  hooks.resume = true;
  std::vector<std::string> notices;
  hooks.notice = [&notices](const std::string& line) { notices.push_back(line); };
  Run resumed;
  resumed.result =
      train(other, data, *makeModel(other, data.inputShape), *strategy, resumed.log, {}, hooks);
  configureThreads(1);
  REQUIRE(resumed.result.status == "completed");
  CHECK(resumed.log.description.integers.at("threads") == 1);
  REQUIRE(notices.size() == 2);
  CHECK(notices[0] == "continues with the 1 thread(s) of checkpoint " + checkpoint +
                          " (train.threads asks for 2), so that its curves continue bit for bit");
  requireContinuation(full.log, resumed.log);
}
