// libFuzzer target: any bytes as an experiment file. The loader's contract
// is that bad input raises ConfigError (file, line, key path) and nothing
// else: any other exception, crash, leak or sanitizer report is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "framework/config_node.h"
#include "framework/experiment.h"
#include "models/registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const fulcrum::ExperimentSpec spec = fulcrum::parseExperiment(text, "fuzz.yaml", {});
    (void)spec.resolvedYaml();
    (void)fulcrum::planModel(spec);  // the model block is validated by the model registry
  } catch (const fulcrum::ConfigError&) {
  }
  return 0;
}
