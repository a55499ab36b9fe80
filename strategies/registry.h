// The table of strategies: one row per strategy, in strategies/registry.cpp.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/config_node.h"
#include "framework/strategy.h"
#include "framework/task.h"

namespace fulcrum {

/// Builds a strategy from its options (the YAML mapping under `strategy:`
/// less `name`). Reads every option it knows through `options`, validating
/// each (ConfigError on a bad one); the registry rejects the rest.
using StrategyFactory =
    std::function<std::unique_ptr<Strategy>(const ConfigNode& options,
                                            const std::vector<TaskSpec>& tasks)>;

/// One row of the table.
struct StrategyInfo {
  std::string name;          ///< as written in YAML
  std::string description;   ///< one line
  std::string reference;     ///< paper: authors, venue, year
  GradientNeed needs;        ///< what it asks the trainer for (default options)
  StrategyFactory make;
};

/// Every strategy, in the order `fulcrum list` prints them: the built-in
/// ones, then those added by registerStrategy().
const std::vector<StrategyInfo>& strategyTable();

/// Adds a strategy of the program's own to the table, so that experiment
/// files, `fulcrum list` and `fulcrum probe` know it by `info.name`. Call it
/// from main() before fulcrum::cliMain() (not from a static initialiser).
/// std::invalid_argument if the name is empty, taken or not a plain name, or
/// `info.make` is empty.
void registerStrategy(StrategyInfo info);

/// Builds the strategy described by `node` (a mapping with `name` and its
/// options). An unknown name is a ConfigError listing the known names; an
/// unknown option a ConfigError naming the closest known one. A strategy
/// whose handlesAbsentTasks() is false comes wrapped in an AbsentTaskAdapter
/// (strategies/absent_tasks.h), so every strategy copes with tasks that have
/// no label in a batch; unwrapStrategy() reaches the strategy itself.
std::unique_ptr<Strategy> makeStrategy(const ConfigNode& node, const std::vector<TaskSpec>& tasks);

/// The strategy inside an AbsentTaskAdapter, or `strategy` itself.
Strategy& unwrapStrategy(Strategy& strategy);

}  // namespace fulcrum
