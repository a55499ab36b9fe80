// Datasets from the user's CSV files (HDF5 files: tests/check_file_data.sh,
// which writes them with h5py).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <torch/torch.h>

#include "datasets/file_datasets.h"
#include "framework/experiment.h"

using namespace fulcrum;
namespace fs = std::filesystem;

namespace {

/// A fresh folder holding `data.csv` with `csv`; the experiment "file" lives there too.
fs::path folderWith(const std::string& name, const std::string& csv) {
  const fs::path folder = fs::temp_directory_path() / ("fulcrum-test-datasets-" + name);
  fs::create_directories(folder);
  std::ofstream(folder / "data.csv") << csv;
  return folder;
}

ExperimentSpec experimentIn(const fs::path& folder, const std::string& data, const std::string& tasks) {
  registerFileDatasets();
  return parseExperiment("data: " + data + "\ntasks: " + tasks + "\nstrategy: {name: fixed}\n",
                         (folder / "exp.yaml").string());
}

// 10 rows: x0 = row, x1 = 10·row; click 0/1; conv −1 where click is 0; kind a class.
std::string funnelCsv() {
  std::string csv = "x0, x1 ,click,conv,kind\n";
  for (int i = 0; i < 10; ++i) {
    const int click = i % 2;
    csv += std::to_string(i) + "," + std::to_string(10 * i) + "," + std::to_string(click) + "," +
           (click ? std::to_string(i % 4 == 1 ? 1 : 0) : std::string("-1")) + "," + std::to_string(i % 3) + "\n";
  }
  return csv;
}

}  // namespace

TEST_CASE("csv: columns, relative path, missing labels, split sizes", "[datasets][csv]") {
  const fs::path folder = folderWith("basic", funnelCsv());
  const ExperimentSpec spec = experimentIn(
      folder, "{kind: csv, path: data.csv, inputs: [x0, x1], targets: {ctr: click, cvr: conv, kind: kind}, "
              "val_fraction: 0.2, test_fraction: 0.2}",
      "[{name: ctr, kind: binary}, {name: cvr, kind: binary}, {name: kind, kind: classification, outputs: 3}]");
  REQUIRE(spec.tasks.size() == 3);
  const MultiTaskData data = loadData(spec);
  REQUIRE(data.train.size() == 6);
  REQUIRE(data.val.size() == 2);
  REQUIRE(data.test.size() == 2);
  REQUIRE(data.inputShape == std::vector<int64_t>{2});
  REQUIRE(data.missingLabels);
  // Every row is in exactly one split; x1 = 10·x0 row by row; cvr is missing exactly where click is 0.
  double sum = 0;
  for (const Split* split : {&data.train, &data.val, &data.test}) {
    sum += split->inputs.select(1, 0).sum().item<double>();
    REQUIRE(torch::allclose(split->inputs.select(1, 1), 10 * split->inputs.select(1, 0)));
    REQUIRE(torch::equal(split->targets[1].isnan(), split->targets[0].eq(0)));
    REQUIRE(split->targets[2].dtype() == torch::kInt64);
  }
  REQUIRE(sum == 45.0);
}

TEST_CASE("csv: the split depends on split_seed only; standardize uses the training split",
          "[datasets][csv]") {
  const fs::path folder = folderWith("standardize", funnelCsv());
  const std::string data = "{kind: csv, path: data.csv, targets: {ctr: click}, standardize: true, split_seed: 7";
  const std::string tasks = "[{name: ctr, kind: binary}]";
  const MultiTaskData a = loadData(experimentIn(folder, data + "}", tasks));
  const MultiTaskData b = loadData(experimentIn(folder, data + "}", tasks));
  REQUIRE(torch::equal(a.test.inputs, b.test.inputs));
  // Default inputs: every non-target column (x0, x1, conv, kind).
  REQUIRE(a.inputShape == std::vector<int64_t>{4});
  const torch::Tensor x = a.train.inputs.to(torch::kFloat64);
  REQUIRE(x.mean(0).abs().max().item<double>() < 1e-6);
  const torch::Tensor std = (x - x.mean(0)).square().mean(0).sqrt();
  REQUIRE((std - 1.0).abs().max().item<double>() < 1e-5);
  const MultiTaskData other = loadData(experimentIn(folder, data.substr(0, data.size() - 1) + "8}", tasks));
  REQUIRE_FALSE(torch::equal(a.test.inputs, other.test.inputs));
}

TEST_CASE("csv: errors name the file, the line and the column", "[datasets][csv]") {
  SECTION("a non-numeric cell") {
    const fs::path folder = folderWith("cell", "a,b,y\n1,2,1\n3,x,0\n");
    const ExperimentSpec spec = experimentIn(folder, "{kind: csv, path: data.csv, targets: {y: y}, val_fraction: 0, test_fraction: 0}",
                                             "[{name: y, kind: binary}]");
    REQUIRE_THROWS_WITH(loadData(spec), Catch::Contains("exp.yaml:1:") &&
                                            Catch::Contains("data.path: " + (folder / "data.csv").string() +
                                                            " line 3, column 'b': 'x' is not a number"));
  }
  SECTION("a binary label that is not 0 or 1") {
    const fs::path folder = folderWith("binary", "a,y\n1,1\n3,2\n");
    const ExperimentSpec spec = experimentIn(folder, "{kind: csv, path: data.csv, targets: {y: y}, val_fraction: 0, test_fraction: 0}",
                                             "[{name: y, kind: binary}]");
    REQUIRE_THROWS_WITH(loadData(spec), Catch::Contains("data.targets.y: ") &&
                                            Catch::Contains("column 'y', line 3: label 2 of binary task 'y' is not 0 or 1"));
  }
  SECTION("a ragged row") {
    const fs::path folder = folderWith("ragged", "a,y\n1,1\n3\n");
    const ExperimentSpec spec = experimentIn(folder, "{kind: csv, path: data.csv, targets: {y: y}}", "[{name: y, kind: binary}]");
    REQUIRE_THROWS_WITH(loadData(spec), Catch::Contains("line 3 has 1 cells, the header has 2"));
  }
  SECTION("a missing input value") {
    const fs::path folder = folderWith("missing-input", "a,y\n1,1\n,0\n");
    const ExperimentSpec spec = experimentIn(folder, "{kind: csv, path: data.csv, targets: {y: y}}", "[{name: y, kind: binary}]");
    REQUIRE_THROWS_WITH(loadData(spec), Catch::Contains("line 3, column 'a': empty or missing input value"));
  }
  SECTION("a target that is not a task, found before anything runs") {
    const fs::path folder = folderWith("extra", "a,y,z\n1,1,0\n");
    REQUIRE_THROWS_WITH(experimentIn(folder, "{kind: csv, path: data.csv, targets: {y: y, z: z}}", "[{name: y, kind: binary}]"),
                        Catch::Contains("data.targets.z: target 'z' is not in the tasks: list"));
  }
}

TEST_CASE("convertLabels: sentinel and NaN are missing; classes are checked", "[datasets]") {
  const ConfigNode where(YAML::Load("{targets: {t: /y}}"), "exp.yaml", "data");
  const auto row = [](int64_t i) { return "row " + std::to_string(i); };
  const torch::Tensor raw = torch::tensor({0.0, 2.0, -1.0, std::nan("")}, torch::kFloat64);
  const torch::Tensor classes =
      convertLabels(raw, TaskSpec{"t", TaskKind::kClassification, 3}, -1, where, "targets", "/y", row);
  REQUIRE(torch::equal(classes, torch::tensor({0, 2, static_cast<int>(kMissingClass), static_cast<int>(kMissingClass)},
                                              torch::kInt64)));
  REQUIRE_THROWS_WITH(convertLabels(raw, TaskSpec{"t", TaskKind::kClassification, 2}, -1, where, "targets", "/y", row),
                      Catch::Contains("/y, row 1: class label 2 of task 't' is out of range 0..1"));
  const torch::Tensor regression = convertLabels(raw, TaskSpec{"t", TaskKind::kRegression, 1}, -1, where, "targets", "/y", row);
  REQUIRE(regression[2].item<float>() == -1.0f);  // the sentinel is a value for regression
  REQUIRE(std::isnan(regression[3].item<float>()));
}
