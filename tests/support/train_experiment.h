// Trains an experiment given as YAML text with the registered strategies.
#pragma once

#include <string>
#include <vector>

#include "framework/experiment.h"
#include "framework/trainer.h"
#include "models/registry.h"
#include "strategies/registry.h"
#include "tests/support/memory_log.h"

namespace fulcrum::testing {

/// Parses `yaml` (reported as file `file`) with `overrides`, builds its
/// strategy from the registry, loads its data and trains it; returns what
/// was logged.
inline MemoryLog trainExperiment(const std::string& yaml,
                                 const std::vector<std::string>& overrides = {},
                                 const std::string& file = "test.yaml") {
  const ExperimentSpec spec = parseExperiment(yaml, file, overrides);
  auto strategy = makeStrategy(spec.strategy, spec.tasks);
  const MultiTaskData data = loadData(spec);
  MemoryLog log;
  train(spec, data, *makeModel(spec, data.inputShape), *strategy, log, {});
  return log;
}

}  // namespace fulcrum::testing
