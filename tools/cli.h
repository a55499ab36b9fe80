// fulcrum's command line as a library call, so that a program of its own can
// register strategies, datasets or trunks and then offer every `fulcrum`
// subcommand (run, sweep, compare, list, ...) with them:
//
//   #include "tools/cli.h"
//   #include "strategies/registry.h"
//   int main(int argc, char** argv) {
//     fulcrum::registerStrategy({"mine", "my weighting", "me, 2026", fulcrum::GradientNeed::kLosses, makeMine});
//     return fulcrum::cliMain(argc, argv);
//   }
//
// A sweep runs each trial in a child process of the same executable, which
// registers the same extensions in its main() before calling cliMain().
#pragma once

namespace fulcrum {

/// Parses `argv` as the `fulcrum` command does and runs the subcommand;
/// returns its exit code (0 success, 1 a trial failed, 2 bad input). Registers
/// the file datasets (hdf5, csv) first. Call once per process.
int cliMain(int argc, char** argv);

}  // namespace fulcrum
