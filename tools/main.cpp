// The `fulcrum` command.
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"fulcrum: multi-task learning with adaptive task weighting"};
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("--version", version, "print fulcrum's, LibTorch's and HDF5's versions and the BLAS in use");

  fulcrum::RunOptions run;
  CLI::App* runCommand = app.add_subcommand("run", "train one trial from an experiment file");
  runCommand->add_option("experiment", run.experiment, "experiment YAML file")->required();
  runCommand->add_option("--set", run.overrides, "override a key: --set train.epochs=3 (repeatable)");
  runCommand->add_option("--out", run.out, "result file (default <output>/<name>-<strategy>-seed<seed>.h5)");
  runCommand->add_flag("--overwrite", run.overwrite, "replace an existing result file");
  runCommand->add_flag("--quiet", run.quiet, "no per-epoch progress lines");

  CLI::App* listCommand = app.add_subcommand("list", "list the strategies");

  std::vector<std::string> files;
  CLI::App* showCommand = app.add_subcommand("show", "print a result file's metadata and final metrics");
  showCommand->add_option("files", files, "result files (.h5)")->required();

  std::vector<std::string> summaryFiles;
  CLI::App* summaryCommand =
      app.add_subcommand("summary", "final test metrics per strategy, mean ± std over trial files");
  summaryCommand->add_option("files", summaryFiles, "result files (.h5)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (version) {
      std::cout << fulcrum::versionText();
      return 0;
    }
    if (*runCommand) return fulcrum::runCommand(run);
    if (*listCommand) return fulcrum::listCommand();
    if (*showCommand) return fulcrum::showCommand(files);
    if (*summaryCommand) return fulcrum::summaryCommand(summaryFiles);
    std::cout << app.help();
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "fulcrum: error: " << e.what() << "\n";
    return 1;
  }
}
