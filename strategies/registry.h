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

/// Every built-in strategy, in the order `fulcrum list` prints them.
const std::vector<StrategyInfo>& strategyTable();

/// Builds the strategy described by `node` (a mapping with `name` and its
/// options). An unknown name is a ConfigError listing the known names; an
/// unknown option a ConfigError naming the closest known one.
std::unique_ptr<Strategy> makeStrategy(const ConfigNode& node, const std::vector<TaskSpec>& tasks);

}  // namespace fulcrum
