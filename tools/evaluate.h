// `fulcrum evaluate`: scores a model saved by train.save_model on a split of
// an experiment's data, so that a trained model outlives its trial.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace fulcrum {

/// Options of `fulcrum evaluate`.
struct EvaluateOptions {
  std::string experiment;              ///< the YAML file (data, model, tasks)
  std::vector<std::string> overrides;  ///< --set key.path=value
  std::string model;                   ///< --model: a .final.pt or .best.pt file
  std::string split = "test";          ///< --split train|val|test|all
  std::string format = "table";        ///< --format table|json
};

/// Builds the experiment's data and model, loads the saved parameters
/// (refused, exit 2, if the file is damaged or does not fit the model) and
/// prints every task's metrics on the split(s). Exit 0, or 2 for bad input.
int evaluateCommand(const EvaluateOptions& options, std::ostream& out, std::ostream& err);

}  // namespace fulcrum
