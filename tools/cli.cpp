// The `fulcrum` command line, as a library call (tools/cli.h).
#include "tools/cli.h"

#include <CLI/CLI.hpp>
#include <exception>
#include <iostream>

#include "datasets/file_datasets.h"
#include "results/file_screen.h"
#include "tools/commands.h"
#include "tools/evaluate.h"
#include "tools/landscape.h"
#include "tools/probe.h"
#include "tools/result_commands.h"
#include "tools/slurm.h"
#include "tools/sweep.h"

namespace fulcrum {

int cliMain(int argc, char** argv) {
  results::skipHdf5ShutdownAtExit();
  registerFileDatasets();
  CLI::App app{"fulcrum: multi-task learning with adaptive task weighting"};
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("--version", version,
               "print fulcrum's, LibTorch's and HDF5's versions and the BLAS in use");

  fulcrum::RunOptions run;
  CLI::App* runCommand = app.add_subcommand("run", "train one trial from an experiment file");
  runCommand->add_option("experiment", run.experiment, "experiment YAML file")->required();
  std::string runStrategy, sweepStrategy, statusStrategy;
  const char* strategyHelp =
      "use strategy NAME with its defaults instead of the file's strategy block (as --set "
      "strategy.name=NAME; --set strategy.OPTION=... after it tunes it)";
  runCommand->add_option("--strategy", runStrategy, strategyHelp);
  runCommand->add_option("--set", run.overrides,
                         "override a key: --set train.epochs=3 (repeatable)");
  runCommand->add_option("--out", run.out,
                         "result file (default <output>/<name>-<strategy>-seed<seed>.h5)");
  auto* overwriteFlag =
      runCommand->add_flag("--overwrite", run.overwrite, "replace an existing result file");
  runCommand
      ->add_flag("--resume", run.resume,
                 "continue an interrupted trial from its checkpoint (<result>.ckpt, "
                 "train.checkpoint_every)")
      ->excludes(overwriteFlag);
  runCommand->add_flag("--quiet", run.quiet, "no per-epoch progress lines");

  std::string listName;
  CLI::App* listCommand = app.add_subcommand(
      "list", "list the strategies; with a NAME, that strategy's options and defaults");
  listCommand->add_option("name", listName, "a strategy's name");

  fulcrum::SweepCommandOptions sweep;
  CLI::App* sweepCommand = app.add_subcommand(
      "sweep", "run every trial of an experiment's sweep (sweep:, zip:, seeds:), resumably");
  sweepCommand->add_option("experiment", sweep.experiment, "experiment YAML file")->required();
  sweepCommand->add_option("--strategy", sweepStrategy, strategyHelp);
  sweepCommand->add_option("--set", sweep.sets,
                           "override a key of the base configuration (repeatable)");
  sweepCommand->add_option("--sweep", sweep.sweeps,
                           "add or replace an axis: --sweep train.optimizer.lr=1e-3,1e-2");
  sweepCommand->add_flag("--dry-run", sweep.dryRun, "print the trial table and count, run nothing");
  sweepCommand->add_option("--jobs", sweep.jobs, "trials at once (default: the number of cores)");
  sweepCommand->add_flag("--retry-failed", sweep.retryFailed,
                         "rerun trials whose file says failed");
  sweepCommand->add_flag("--no-halving", sweep.noHalving,
                         "train every trial to the end despite sweep.halving (the full grid)");
  std::string launcher = "local";
  fulcrum::SlurmOptions slurm;
  CLI::Option* launcherOption =
      sweepCommand
          ->add_option("--launcher", launcher,
                       "local (default) or slurm: submit a job array and return")
          ->check(CLI::IsMember({"local", "slurm"}));
  sweepCommand
      ->add_option("--partition", slurm.partition, "slurm: partition (default: the cluster's)")
      ->needs(launcherOption);
  sweepCommand->add_option("--time", slurm.time, "slurm: time limit per trial, e.g. 1:00:00")
      ->needs(launcherOption);
  sweepCommand
      ->add_option("--array-parallelism", slurm.arrayParallelism,
                   "slurm: at most K trials at once (%K)")
      ->needs(launcherOption);
  sweepCommand
      ->add_option("--cpus-per-task", slurm.cpusPerTask,
                   "slurm: CPUs per trial, also its threads (default 1)")
      ->needs(launcherOption);
  sweepCommand
      ->add_flag("--gather", slurm.gather,
                 "slurm: an afterany job writes `fulcrum summary` of the files")
      ->needs(launcherOption);
  sweepCommand->add_flag("--halving-advance", slurm.advance)->needs(launcherOption)->group("");

  fulcrum::StatusOptions status;
  CLI::App* statusCommand = app.add_subcommand(
      "status",
      "each trial's state read from its files (completed, paused, running, stale, "
      "failed, damaged, unreadable, foreign)");
  statusCommand
      ->add_option("target", status.target, "a folder of trial files, or an experiment YAML file")
      ->required();
  statusCommand->add_option("--strategy", statusStrategy, "with an experiment file: as for sweep");
  statusCommand->add_option("--set", status.sets,
                            "with an experiment file: as for sweep (repeatable)");
  statusCommand->add_option("--sweep", status.sweeps,
                            "with an experiment file: as for sweep (repeatable)");

  fulcrum::RunTrialOptions trial;
  CLI::App* runTrialCommand = app.add_subcommand(
      "run-trial",
      "run trial --index I of a sweep under its lock file (what `sweep` launches per trial)");
  runTrialCommand->add_option("experiment", trial.experiment, "experiment YAML file")->required();
  runTrialCommand->add_option("--index", trial.index, "the trial's index in the sweep (0-based)")
      ->required();
  runTrialCommand->add_option("--set", trial.sets, "as for sweep (repeatable)");
  runTrialCommand->add_option("--sweep", trial.sweeps, "as for sweep (repeatable)");
  runTrialCommand->add_option("--threads", trial.threads,
                              "train.threads for this trial (default: the file's)");
  runTrialCommand->add_flag("--log", trial.log,
                            "once locked, write all output to <result file>.log");
  runTrialCommand->add_option(
      "--pause-after", trial.pauseAfter,
      "stop after epoch E, status paused, the checkpoint kept (successive halving)");

  std::vector<std::string> files;
  CLI::App* showCommand =
      app.add_subcommand("show", "print a result file's metadata and final metrics");
  showCommand->add_option("files", files, "result files (.h5)")->required();

  fulcrum::CompareCommandOptions compare;
  CLI::App* compareCommand = app.add_subcommand(
      "compare",
      "per configuration (minus seed): test metrics mean ± std over seeds, Δm%, rank, time");
  compareCommand->add_option("target", compare.targets, "a folder of trial files (or trial files)")
      ->required();
  compareCommand->add_option(
      "--baseline", compare.baseline,
      "configuration Δm% is measured against, as labelled in the table (default fixed)");
  compareCommand->add_option("--baseline-dir", compare.baselineDir,
                             "instead: a folder of single-task runs, averaged per task and metric");
  compareCommand
      ->add_option("--metric", compare.metrics,
                   "a metric (accuracy) or column (top_left/accuracy) to show; repeatable; "
                   "default all but loss")
      ->allow_extra_args(false);
  compareCommand->add_option(
      "--select", compare.select,
      "values Δm% and rank use: best (default; per metric, at its best validation epoch), final, "
      "best:delta_m (the epoch of the best validation Δm%), best:TASK/METRIC (the epoch of that "
      "metric's best validation value) or last:K (the mean of the last K epochs)");
  compareCommand->add_option("--split", compare.split,
                             "the split scored: test (default) or val (under cross-validation "
                             "the held-out folds)");
  compareCommand
      ->add_option("--delta-m", compare.deltaM,
                   "flat (default: the mean over the metrics shown) or tasks (the mean over "
                   "tasks of each task's mean, LibMTL's)")
      ->check(CLI::IsMember({"flat", "tasks"}));
  compareCommand->add_option("--format", compare.format, "table (default), markdown, csv or json")
      ->check(CLI::IsMember({"table", "markdown", "csv", "json"}));

  std::vector<std::string> summaryFiles;
  CLI::App* summaryCommand =
      app.add_subcommand("summary", "`compare` of the given trial files, as a table");
  summaryCommand->add_option("files", summaryFiles, "result files (.h5)")->required();

  fulcrum::ExportCommandOptions exportOptions;
  CLI::App* exportCommand = app.add_subcommand(
      "export", "a folder's curves in long (tidy) form, one value per row, for pandas or seaborn");
  exportCommand->add_option("target", exportOptions.target, "a folder of trial files")->required();
  exportCommand->add_option("--format", exportOptions.format, "csv (default) or jsonl")
      ->check(CLI::IsMember({"csv", "jsonl"}));
  exportCommand
      ->add_option(
          "--what", exportOptions.what,
          "epochs (default): per-epoch metrics; steps: per-step losses, weights, timings, "
          "diagnostics; summary: final and best test metrics; gradients: per-task gradient norms, "
          "pairwise cosines and update norms (train.log_gradients_every)")
      ->check(CLI::IsMember({"steps", "epochs", "summary", "gradients"}));
  exportCommand->add_option("--out", exportOptions.out, "output file (default standard output)");

  fulcrum::ReportCommandOptions report;
  CLI::App* reportCommand = app.add_subcommand(
      "report",
      "one self-contained HTML page: comparison, figures, experiment, environment, failed trials");
  reportCommand->add_option("target", report.compare.targets, "a folder of trial files")
      ->required();
  reportCommand->add_option("--out", report.out, "HTML file (default <folder>/report.html)");
  reportCommand->add_option("--baseline", report.compare.baseline, "as for compare");
  reportCommand->add_option("--baseline-dir", report.compare.baselineDir, "as for compare");
  reportCommand->add_option("--metric", report.compare.metrics, "as for compare (repeatable)")
      ->allow_extra_args(false);
  reportCommand->add_option("--select", report.compare.select, "as for compare");
  reportCommand->add_option("--split", report.compare.split, "as for compare");
  reportCommand->add_option("--delta-m", report.compare.deltaM, "as for compare")
      ->check(CLI::IsMember({"flat", "tasks"}));
  reportCommand->add_option("--plot-script", report.plotScript,
                            "the plot script (default the source tree's tools/plot)");
  reportCommand->add_option("--python", report.python,
                            "Python with h5py and matplotlib (default /usr/bin/python3)");
  reportCommand->add_flag("--no-plots", report.noPlots, "leave the figures out");

  fulcrum::EvaluateOptions evaluate;
  CLI::App* evaluateCommand = app.add_subcommand(
      "evaluate", "score a model saved by train.save_model on a split of an experiment's data");
  evaluateCommand
      ->add_option("experiment", evaluate.experiment,
                   "experiment YAML file (its data, model and tasks)")
      ->required();
  evaluateCommand
      ->add_option("--model", evaluate.model, "the model file (<result>.best.pt or .final.pt)")
      ->required();
  evaluateCommand->add_option("--split", evaluate.split, "train, val, test (default) or all");
  evaluateCommand->add_option("--set", evaluate.overrides, "override a key (repeatable)");
  evaluateCommand->add_option("--format", evaluate.format, "table (default) or json");

  fulcrum::ProbeOptions probe;
  CLI::App* probeCommand = app.add_subcommand(
      "probe",
      "run one strategy on given per-task gradient matrices (CSV), print the update as JSON");
  probeCommand->add_option("strategy", probe.strategy, "strategy name (see `fulcrum list`)")
      ->required();
  probeCommand
      ->add_option("--grads", probe.grads,
                   "CSV: T rows (tasks) of P gradients; K matrices separated by blank lines")
      ->required();
  probeCommand->add_option("--losses", probe.losses,
                           "CSV: one line of T losses per step (default 1 each); a strategy that "
                           "measures the losses after its step (famo) gets the next line");
  probeCommand->add_option("--set", probe.sets,
                           "a strategy option: --set c=0.5 (value as YAML; repeatable)");
  probeCommand->add_option("--steps", probe.steps, "number of matrices in --grads (default 1)");
  probeCommand->add_option("--seed", probe.seed, "StrategyContext seed (default 0)");

  fulcrum::LandscapeOptions landscape;
  CLI::App* landscapeCommand = app.add_subcommand("landscape",
                                                  "run strategies on the two-task landscape (x in "
                                                  "R^2) from given starts; trajectories to HDF5");
  landscapeCommand->add_option("experiment", landscape.experiment, "landscape YAML file")
      ->required();
  landscapeCommand->add_option("--strategy", landscape.strategies,
                               "only this entry of `strategies:` (repeatable)");
  landscapeCommand->add_option("--steps", landscape.steps, "override landscape.steps")
      ->check(CLI::Range(1, 100000000));
  landscapeCommand->add_option("--out", landscape.out, "result file (default <output>/<name>.h5)");
  landscapeCommand
      ->add_option("--jobs", landscape.jobs, "runs at once (default: the number of cores)")
      ->check(CLI::Range(1, 1024));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  // --strategy NAME comes before every --set, so that `--set strategy.X=...` tunes it.
  for (auto [name, sets] :
       {std::pair{&runStrategy, &run.overrides}, std::pair{&sweepStrategy, &sweep.sets},
        std::pair{&statusStrategy, &status.sets}}) {
    if (!name->empty()) sets->insert(sets->begin(), "strategy.name=" + *name);
  }
  try {
    if (version) {
      std::cout << fulcrum::versionText();
      return 0;
    }
    if (*runCommand) return fulcrum::runCommand(run);
    if (*listCommand)
      return listName.empty() ? fulcrum::listCommand() : fulcrum::listStrategyCommand(listName);
    if (*sweepCommand && launcher == "slurm") return fulcrum::slurmSweepCommand(sweep, slurm);
    if (*sweepCommand) return fulcrum::sweepCommand(sweep);
    if (*statusCommand) return fulcrum::statusCommand(status);
    if (*runTrialCommand) return fulcrum::runTrialCommand(trial);
    if (*showCommand) return fulcrum::showCommand(files);
    if (*compareCommand) return fulcrum::compareCommand(compare, std::cout, std::cerr);
    if (*summaryCommand) {
      fulcrum::CompareCommandOptions options;
      options.targets = summaryFiles;
      return fulcrum::compareCommand(options, std::cout, std::cerr);
    }
    if (*exportCommand) return fulcrum::exportCommand(exportOptions, std::cout, std::cerr);
    if (*reportCommand) return fulcrum::reportCommand(report, std::cout, std::cerr);
    if (*landscapeCommand) return fulcrum::landscapeCommand(landscape);
    if (*probeCommand) return fulcrum::probeCommand(probe, std::cout, std::cerr);
    if (*evaluateCommand) return fulcrum::evaluateCommand(evaluate, std::cout, std::cerr);
    std::cout << app.help();
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "fulcrum: error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace fulcrum
