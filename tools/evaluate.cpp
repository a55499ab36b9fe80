#include "tools/evaluate.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <new>

#include "framework/checkpoint.h"
#include "framework/experiment.h"
#include "framework/trainer.h"
#include "models/registry.h"
#include "results/json.h"

namespace fulcrum {

int evaluateCommand(const EvaluateOptions& options, std::ostream& out, std::ostream& err) {
  auto fail = [&err](const std::string& message) {
    err << "fulcrum evaluate: " << message << "\n";
    return 2;
  };
  if (options.split != "train" && options.split != "val" && options.split != "test" &&
      options.split != "all")
    return fail(fmt::format("unknown --split '{}' (known: train, val, test, all)", options.split));
  if (options.format != "table" && options.format != "json")
    return fail(fmt::format("unknown --format '{}' (known: table, json)", options.format));
  ExperimentSpec spec;
  MultiTaskData data;
  std::shared_ptr<MultiTaskModel> model;
  SavedModel about;
  try {
    spec = loadExperiment(options.experiment, options.overrides);
    data = loadData(spec);
    model = makeModel(spec, data.inputShape);
    about = loadModel(options.model, *model);
  } catch (const ConfigError& e) {
    return fail(e.what());
  } catch (const DataError& e) {
    return fail(errorAtKey(spec, "data", e.what()).what());
  } catch (const CheckpointError& e) {
    return fail(e.what());
  } catch (const c10::Error& e) {
    return fail(e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return fail("not enough memory for the data and the model");
  }
  configureThreads(spec.train.threads);
  std::vector<std::pair<std::string, const Split*>> splits;
  for (const auto& [name, split] : {std::pair<std::string, const Split*>{"train", &data.train},
                                    {"val", &data.val},
                                    {"test", &data.test}}) {
    if (options.split == "all" || options.split == name) splits.emplace_back(name, split);
  }
  std::vector<std::vector<std::vector<double>>> values;
  try {
    for (const auto& [name, split] : splits)
      values.push_back(
          evaluateSplit(*model, *split, spec.tasks, spec.train.evalBatchSize, data.missingLabels));
  } catch (const c10::Error& e) {
    return fail(fmt::format("evaluating '{}' on {}: {}", options.model, options.experiment,
                            e.what_without_backtrace()));
  }
  const std::string what = about.which == "best"
                               ? fmt::format("the best model (epoch {}, val {} {:.6g})",
                                             about.epoch, about.criterion, about.value)
                               : fmt::format("the final model (epoch {})", about.epoch);
  if (options.format == "json") {
    out << "{\"model\": " << results::jsonString(options.model)
        << ", \"which\": " << results::jsonString(about.which) << ", \"epoch\": " << about.epoch
        << ", \"experiment\": " << results::jsonString(options.experiment) << ", \"splits\": {";
    for (std::size_t s = 0; s < splits.size(); ++s) {
      out << (s ? ", " : "") << results::jsonString(splits[s].first) << ": {";
      for (std::size_t t = 0; t < spec.tasks.size(); ++t) {
        const std::vector<std::string> metrics = metricNames(spec.tasks[t].kind);
        out << (t ? ", " : "") << results::jsonString(spec.tasks[t].name) << ": {";
        for (std::size_t m = 0; m < metrics.size(); ++m)
          out << (m ? ", " : "") << results::jsonString(metrics[m]) << ": "
              << results::jsonNumber(values[s][t][m]);
        out << "}";
      }
      out << "}";
    }
    out << "}}\n";
    return 0;
  }
  out << fmt::format("fulcrum evaluate: {}: {} of {}\n", options.model, what,
                     about.which.empty() ? "?" : spec.name);
  for (std::size_t s = 0; s < splits.size(); ++s) {
    out << fmt::format("{} ({} examples):\n", splits[s].first, splits[s].second->size());
    for (std::size_t t = 0; t < spec.tasks.size(); ++t) {
      const std::vector<std::string> metrics = metricNames(spec.tasks[t].kind);
      for (std::size_t m = 0; m < metrics.size(); ++m) {
        const double v = values[s][t][m];
        out << fmt::format("  {}/{} {}\n", spec.tasks[t].name, metrics[m],
                           std::isfinite(v) ? fmt::format("{:.6g}", v) : std::string("-"));
      }
    }
  }
  return 0;
}

}  // namespace fulcrum
