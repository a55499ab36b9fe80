// `fulcrum landscape`: every strategy of a landscape experiment from every
// start on the two-task landscape (framework/landscape.h), trajectories to
// one HDF5 file for tools/plot-landscape.
#pragma once

#include <string>
#include <vector>

namespace fulcrum {

/// Options of `fulcrum landscape`.
struct LandscapeOptions {
  std::string experiment;               ///< the YAML file
  std::vector<std::string> strategies;  ///< --strategy: only these (default every entry)
  int64_t steps = 0;                    ///< --steps: override landscape.steps (0 = keep)
  std::string out;                      ///< --out: default <output>/<name>.h5
  int64_t jobs = 0;                     ///< --jobs: runs at once (0 = the cores)
};

/// Exit code: 0 every run completed; 1 some run failed (named); 2 bad input.
int landscapeCommand(const LandscapeOptions& options);

}  // namespace fulcrum
