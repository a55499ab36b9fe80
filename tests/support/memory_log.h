// Test helpers around the trainer: a RunLog that keeps everything it is
// told, and a strategy made of a function.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "framework/run_log.h"
#include "framework/strategy.h"

namespace fulcrum::testing {

/// Keeps everything the trainer reports, in order.
struct MemoryLog : RunLog {
  TrialDescription description;
  std::vector<StepRecord> steps;
  std::vector<GradientRecord> gradientRecords;
  std::vector<EpochRecord> epochs;
  std::string status, error;
  bool begun = false;
  void begin(const TrialDescription& d) override {
    description = d;
    begun = true;
  }
  void step(const StepRecord& r) override { steps.push_back(r); }
  void gradients(const GradientRecord& r) override { gradientRecords.push_back(r); }
  void epoch(const EpochRecord& r) override { epochs.push_back(r); }
  void end(const std::string& s, const std::string& e) override {
    status = s;
    error = e;
  }
};

/// A strategy defined by a function, for exercising the trainer's paths.
struct LambdaStrategy : Strategy {
  GradientNeed need = GradientNeed::kLosses;
  bool absentTasks = false;  ///< what handlesAbsentTasks() answers
  std::function<StepOutput(const StepInput&)> onStep;
  GradientNeed needs() const override { return need; }
  bool handlesAbsentTasks() const override { return absentTasks; }
  StepOutput step(const StepInput& input) override { return onStep(input); }
};

/// The plain sum of the losses, every weight 1.
inline StepOutput equalObjective(const StepInput& input) {
  StepOutput out;
  out.objective = torch::stack(input.losses).sum();
  out.weights = torch::ones({static_cast<int64_t>(input.losses.size())});
  return out;
}

}  // namespace fulcrum::testing
