// Datasets from the user's CSV files (HDF5 files: tests/check_file_data.sh,
// which writes them with h5py; small ones here with HDF5's C API).
#include <fmt/format.h>
#include <hdf5.h>
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "datasets/file_datasets.h"
#include "framework/experiment.h"
#include "framework/model.h"
#include "framework/trainer.h"
#include "models/registry.h"
#include "tests/support/memory_log.h"

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

ExperimentSpec experimentIn(const fs::path& folder, const std::string& data,
                            const std::string& tasks) {
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
           (click ? std::to_string(i % 4 == 1 ? 1 : 0) : std::string("-1")) + "," +
           std::to_string(i % 3) + "\n";
  }
  return csv;
}

/// Writes `datasets` (name → values, stored as float64) into a new HDF5 file;
/// names may hold groups (/train/x).
void writeHdf5(const fs::path& path,
               const std::vector<std::pair<std::string, torch::Tensor>>& datasets) {
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(file >= 0);
  const hid_t links = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(links, 1);
  for (const auto& [name, values] : datasets) {
    const torch::Tensor t = values.to(torch::kFloat64).contiguous();
    const std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
    const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    const hid_t dataset =
        H5Dcreate2(file, name.c_str(), H5T_NATIVE_DOUBLE, space, links, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(dataset >= 0);
    REQUIRE(H5Dwrite(dataset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                     t.data_ptr<double>()) >= 0);
    H5Dclose(dataset);
    H5Sclose(space);
  }
  H5Pclose(links);
  H5Fclose(file);
}

ExperimentSpec regressionExperiment(const fs::path& folder, const std::string& data,
                                    int64_t outputs) {
  registerFileDatasets();
  return parseExperiment(
      "seed: 5\ndata: " + data +
          "\ntasks: [{name: y, kind: regression, outputs: " + std::to_string(outputs) +
          "}]\nmodel: {trunk: {kind: mlp, hidden: [4]}}\n"
          "train: {epochs: 1, batch_size: 64}\nstrategy: {name: fixed}\n",
      (folder / "exp.yaml").string());
}

}  // namespace

TEST_CASE("regression targets N, N × 1 and N × D from csv and hdf5 train on the element-wise MSE",
          "[datasets][regression]") {
  // 12 rows: x = (i / 12, (i mod 3) / 3); y = 2 x0 + 1, and a second column 1 − x1.
  const torch::Tensor i = torch::arange(12, torch::kFloat64);
  const torch::Tensor x = torch::stack({i / 12, i.remainder(3) / 3}, 1);
  const torch::Tensor y = 2 * x.select(1, 0) + 1;
  const torch::Tensor y2 = torch::stack({y, 1 - x.select(1, 1)}, 1);
  std::string csv = "a,b,y\n";
  for (int64_t r = 0; r < 12; ++r) {
    csv += fmt::format("{},{},{}\n", x[r][0].item<double>(), x[r][1].item<double>(),
                       y[r].item<double>());
  }
  const fs::path folder = folderWith("regression", csv);
  writeHdf5(folder / "data.h5", {{"/x", x}, {"/y", y}, {"/y1", y.unsqueeze(1)}, {"/y2", y2}});
  const std::string all = "val_fraction: 0, test_fraction: 0";
  const std::vector<std::tuple<std::string, std::string, int64_t>> cases = {
      {"csv column", "{kind: csv, path: data.csv, inputs: [a, b], targets: {y: y}, " + all + "}",
       1},
      {"hdf5 N", "{kind: hdf5, path: data.h5, inputs: /x, targets: {y: /y}, " + all + "}", 1},
      {"hdf5 N × 1", "{kind: hdf5, path: data.h5, inputs: /x, targets: {y: /y1}, " + all + "}", 1},
      {"hdf5 N × 2", "{kind: hdf5, path: data.h5, inputs: /x, targets: {y: /y2}, " + all + "}", 2},
  };
  for (const auto& [name, data, outputs] : cases) {
    INFO(name);
    const ExperimentSpec spec = regressionExperiment(folder, data, outputs);
    const MultiTaskData loaded = loadData(spec);
    REQUIRE(loaded.train.targets[0].sizes() == std::vector<int64_t>{12, outputs});
    testing::LambdaStrategy strategy;
    strategy.onStep = testing::equalObjective;
    testing::MemoryLog log;
    REQUIRE(train(spec, loaded, *makeModel(spec, loaded.inputShape), strategy, log, {}).status ==
            "completed");
    REQUIRE(log.steps.size() ==
            1);  // one batch: all 12 rows (the mean does not depend on their order)

    // The same initial model (makeModel seeds torch with the experiment's
    // seed), and the MSE by hand, element by element.
    const auto model = makeModel(spec, loaded.inputShape);
    const torch::Tensor out =
        model->forward({loaded.train.inputs}).outputs[0].detach().to(torch::kFloat64);
    const torch::Tensor target = loaded.train.targets[0].to(torch::kFloat64);
    double squares = 0.0, broadcast = 0.0;
    for (int64_t r = 0; r < 12; ++r) {
      for (int64_t c = 0; c < outputs; ++c) {
        squares += std::pow(out[r][c].item<double>() - target[r][c].item<double>(), 2);
        for (int64_t s = 0; s < 12; ++s)
          broadcast += std::pow(out[r][c].item<double>() - target[s][c].item<double>(), 2);
      }
    }
    const double mse = squares / static_cast<double>(12 * outputs);
    REQUIRE(log.steps[0].losses[0] == Approx(mse).epsilon(1e-5));
    // What an N target against N × 1 outputs gave (a 12 × 12 broadcast): far off.
    if (outputs == 1) REQUIRE(std::abs(broadcast / 144.0 - mse) > 0.01 * mse);
  }
}

TEST_CASE("csv: silently wrong data is refused, naming the file, line and column",
          "[datasets][csv]") {
  const std::string all = ", val_fraction: 0, test_fraction: 0}";
  SECTION("a column name twice") {
    const fs::path folder = folderWith("duplicate", "a,b,a,y\n1,2,3,1\n");
    REQUIRE_THROWS_WITH(
        experimentIn(folder, "{kind: csv, path: data.csv, targets: {y: y}" + all,
                     "[{name: y, kind: binary}]"),
        Catch::Contains("data.path: " + (folder / "data.csv").string() +
                        " line 1: the header names column 'a' twice (columns 1 and 3)"));
  }
  SECTION("a target column also an input (the label would leak)") {
    const fs::path folder = folderWith("leak", "a,y\n1,1\n2,0\n");
    REQUIRE_THROWS_WITH(
        experimentIn(folder, "{kind: csv, path: data.csv, inputs: [a, y], targets: {t: y}" + all,
                     "[{name: t, kind: binary}]"),
        Catch::Contains("data.inputs: column 'y' of " + (folder / "data.csv").string() +
                        " is the target of task 't': as an input the label would leak"));
  }
  SECTION("an infinite regression target (only NaN is missing)") {
    const fs::path folder = folderWith("inf", "a,y\n1,1\n2,-inf\n3,NaN\n");
    const ExperimentSpec spec =
        experimentIn(folder, "{kind: csv, path: data.csv, targets: {y: y}" + all,
                     "[{name: y, kind: regression}]");
    REQUIRE_THROWS_WITH(loadData(spec),
                        Catch::Contains("data.path: " + (folder / "data.csv").string() +
                                        " line 3, column 'y': '-inf' is infinite (only NaN or an "
                                        "empty cell marks a missing value)"));
  }
  SECTION("a 10 MB cell is not echoed whole") {
    const fs::path folder = folderWith("huge", "a,y\n1,1\n" + std::string(10 << 20, 'z') + ",0\n");
    const ExperimentSpec spec = experimentIn(
        folder, "{kind: csv, path: data.csv, targets: {y: y}" + all, "[{name: y, kind: binary}]");
    try {
      loadData(spec);
      FAIL("no error");
    } catch (const ConfigError& error) {
      const std::string message = error.what();
      REQUIRE_THAT(message, Catch::Contains("line 3, column 'a': '" + std::string(48, 'z') +
                                            "… (10485760 characters)' "
                                            "is not a number"));
      REQUIRE(message.size() < 1000);
    }
  }
  SECTION("a NUL byte in a value neither cuts the message nor the value") {
    const fs::path folder = folderWith("nul", std::string("a,b,y\n1,2,1\n3,4\0x,0\n", 19));
    const ExperimentSpec spec = experimentIn(
        folder, "{kind: csv, path: data.csv, targets: {y: y}" + all, "[{name: y, kind: binary}]");
    REQUIRE_THROWS_WITH(loadData(spec),
                        Catch::EndsWith("line 3, column 'b': '4\\0x' is not a number"));
  }
  SECTION("a UTF-8 byte order mark is not part of the first column's name") {
    const fs::path folder = folderWith("bom",
                                       "\xEF\xBB\xBF"
                                       "a,y\n1,1\n2,0\n");
    const MultiTaskData data = loadData(
        experimentIn(folder, "{kind: csv, path: data.csv, inputs: [a], targets: {y: y}" + all,
                     "[{name: y, kind: binary}]"));
    REQUIRE(data.train.size() == 2);
  }
}

TEST_CASE("csv: an id-like input column and unscaled inputs are errors unless allowed",
          "[datasets][csv]") {
  // 20 rows (kMinRowsForIdCheck): id 100..119 (distinct integers), small in 0..4 (repeats), x in
  // [0, 1).
  const auto table = [](double scale) {
    std::string csv = "id,small,x,big,y\n";
    for (int r = 0; r < 20; ++r) {
      csv += fmt::format("{},{},{},{},{}\n", 100 + r, r % 5, r / 20.0, scale * (r % 7), r % 2);
    }
    return csv;
  };
  const std::string all = ", val_fraction: 0, test_fraction: 0";
  const std::string tasks = "[{name: y, kind: binary}]";
  const fs::path folder = folderWith("id", table(1.0));
  const std::string path = (folder / "data.csv").string();
  REQUIRE_THROWS_WITH(
      loadData(
          experimentIn(folder, "{kind: csv, path: data.csv, targets: {y: y}" + all + "}", tasks)),
      Catch::Contains(
          "data.path: " + path +
          " column 'id' looks like a row index or an id: its 20 "
          "values are distinct integers (100 to 119). Leave it out of `inputs`, or list "
          "it in data.allow_id_columns: [id]"));
  // Allowed; small (repeats) and x (not integers) are never flagged.
  REQUIRE(
      loadData(experimentIn(folder,
                            "{kind: csv, path: data.csv, targets: {y: y}, allow_id_columns: [id]" +
                                all + "}",
                            tasks))
          .inputShape == std::vector<int64_t>{4});
  REQUIRE_THROWS_WITH(
      experimentIn(folder,
                   "{kind: csv, path: data.csv, targets: {y: y}, allow_id_columns: [y]" + all + "}",
                   tasks),
      Catch::Contains("data.allow_id_columns: 'y' is not an input column of " + path));
  // Fewer than 20 rows: distinct integers are not flagged.
  const fs::path few = folderWith("id-few", "id,y\n1,0\n2,1\n3,0\n");
  REQUIRE(
      loadData(experimentIn(few, "{kind: csv, path: data.csv, targets: {y: y}" + all + "}", tasks))
          .train.size() == 3);

  const fs::path scaled = folderWith("scale", table(1e4));
  const std::string inputs =
      "{kind: csv, path: data.csv, inputs: [small, x, big], targets: {y: y}" + all;
  REQUIRE_THROWS_WITH(
      loadData(experimentIn(scaled, inputs + "}", tasks)),
      Catch::Contains("data.standardize: standardize is false but the input columns of " +
                      (scaled / "data.csv").string() + " differ in scale by a factor of") &&
          Catch::Contains("(standard deviation of 'big'") && Catch::Contains("of 'x' 0.288") &&
          Catch::Contains("Set standardize: true, or data.allow_unscaled: true"));
  REQUIRE(loadData(experimentIn(scaled, inputs + ", standardize: true}", tasks)).train.size() ==
          20);
  REQUIRE(loadData(experimentIn(scaled, inputs + ", allow_unscaled: true}", tasks)).train.size() ==
          20);
  // A factor of 1e3 or less is fine.
  REQUIRE(loadData(experimentIn(folderWith("scale-ok", table(1e2)), inputs + "}", tasks))
              .train.size() == 20);
}

TEST_CASE("hdf5: shapes are checked before step 0", "[datasets][hdf5]") {
  const fs::path folder = folderWith("shapes", "a,y\n1,0\n");
  // 10 rows: the default fractions (0.1, 0.1) leave 8 for training.
  const torch::Tensor y = torch::arange(10, torch::kFloat64).remainder(2);
  writeHdf5(folder / "shapes.h5", {{"/vector", torch::arange(10, torch::kFloat64)},
                                   {"/empty", torch::zeros({10, 0})},
                                   {"/y", y},
                                   {"/train/x", torch::zeros({10, 3})},
                                   {"/train/y", y},
                                   {"/val/x", torch::zeros({2, 2})},
                                   {"/val/y", y.narrow(0, 0, 2)},
                                   {"/test/x", torch::zeros({0, 3})},
                                   {"/test/y", torch::zeros({0})},
                                   {"/y2", torch::zeros({10, 2})}});
  const std::string tasks = "[{name: t, kind: binary}]";
  const std::string file = "{kind: hdf5, path: shapes.h5, ";
  REQUIRE_THROWS_WITH(
      loadData(experimentIn(folder, file + "inputs: /vector, targets: {t: /y}}", tasks)),
      Catch::Contains("data.inputs: the inputs of the training split are 8: expected one row of "
                      "features per example (N × F, or N × C × H × W; one feature is N × 1)"));
  REQUIRE_THROWS_WITH(
      loadData(experimentIn(folder, file + "inputs: /empty, targets: {t: /y}}", tasks)),
      Catch::Contains("data.inputs: the inputs of the training split are 8 × 0: an example has no "
                      "values (dimension 1 is 0)"));
  REQUIRE_THROWS_WITH(
      loadData(experimentIn(folder, file + "inputs: /x, targets: {t: /y}, split: groups}", tasks)),
      Catch::Contains(
          "data.inputs: the inputs of the validation split are 2 × 2: one example is 2, "
          "but the model is built for the training split's examples, 3"));
  REQUIRE_THROWS_WITH(
      loadData(experimentIn(folder, file + "inputs: /train/x, targets: {t: /y2}}", tasks)),
      Catch::Contains(
          "data.targets.t: /y2 has 2 values per row, task 't' (binary, outputs 1) needs 1"));
}

TEST_CASE("csv: columns, relative path, missing labels, split sizes", "[datasets][csv]") {
  const fs::path folder = folderWith("basic", funnelCsv());
  const ExperimentSpec spec = experimentIn(
      folder,
      "{kind: csv, path: data.csv, inputs: [x0, x1], targets: {ctr: click, cvr: conv, kind: kind}, "
      "val_fraction: 0.2, test_fraction: 0.2}",
      "[{name: ctr, kind: binary}, {name: cvr, kind: binary}, {name: kind, kind: classification, "
      "outputs: 3}]");
  REQUIRE(spec.tasks.size() == 3);
  const MultiTaskData data = loadData(spec);
  REQUIRE(data.train.size() == 6);
  REQUIRE(data.val.size() == 2);
  REQUIRE(data.test.size() == 2);
  REQUIRE(data.inputShape == std::vector<int64_t>{2});
  REQUIRE(data.missingLabels);
  // Every row is in exactly one split; x1 = 10·x0 row by row; cvr is missing exactly where click is
  // 0.
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
  const std::string data =
      "{kind: csv, path: data.csv, targets: {ctr: click}, standardize: true, split_seed: 7";
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
  const MultiTaskData other =
      loadData(experimentIn(folder, data.substr(0, data.size() - 1) + "8}", tasks));
  REQUIRE_FALSE(torch::equal(a.test.inputs, other.test.inputs));
}

TEST_CASE("csv: errors name the file, the line and the column", "[datasets][csv]") {
  SECTION("a non-numeric cell") {
    const fs::path folder = folderWith("cell", "a,b,y\n1,2,1\n3,x,0\n");
    const ExperimentSpec spec = experimentIn(
        folder, "{kind: csv, path: data.csv, targets: {y: y}, val_fraction: 0, test_fraction: 0}",
        "[{name: y, kind: binary}]");
    REQUIRE_THROWS_WITH(loadData(spec),
                        Catch::Contains("exp.yaml:1:") &&
                            Catch::Contains("data.path: " + (folder / "data.csv").string() +
                                            " line 3, column 'b': 'x' is not a number"));
  }
  SECTION("a binary label that is not 0 or 1") {
    const fs::path folder = folderWith("binary", "a,y\n1,1\n3,2\n");
    const ExperimentSpec spec = experimentIn(
        folder, "{kind: csv, path: data.csv, targets: {y: y}, val_fraction: 0, test_fraction: 0}",
        "[{name: y, kind: binary}]");
    REQUIRE_THROWS_WITH(
        loadData(spec),
        Catch::Contains("data.targets.y: ") &&
            Catch::Contains("column 'y', line 3: label 2 of binary task 'y' is not 0 or 1"));
  }
  SECTION("a ragged row") {
    const fs::path folder = folderWith("ragged", "a,y\n1,1\n3\n");
    const ExperimentSpec spec = experimentIn(folder, "{kind: csv, path: data.csv, targets: {y: y}}",
                                             "[{name: y, kind: binary}]");
    REQUIRE_THROWS_WITH(loadData(spec), Catch::Contains("line 3 has 1 cells, the header has 2"));
  }
  SECTION("a missing input value") {
    const fs::path folder = folderWith("missing-input", "a,y\n1,1\n,0\n");
    const ExperimentSpec spec = experimentIn(folder, "{kind: csv, path: data.csv, targets: {y: y}}",
                                             "[{name: y, kind: binary}]");
    REQUIRE_THROWS_WITH(loadData(spec),
                        Catch::Contains("line 3, column 'a': empty or missing input value"));
  }
  SECTION("a target that is not a task, found before anything runs") {
    const fs::path folder = folderWith("extra", "a,y,z\n1,1,0\n");
    REQUIRE_THROWS_WITH(experimentIn(folder, "{kind: csv, path: data.csv, targets: {y: y, z: z}}",
                                     "[{name: y, kind: binary}]"),
                        Catch::Contains("data.targets.z: target 'z' is not in the tasks: list"));
  }
}

TEST_CASE("convertLabels: sentinel and NaN are missing; classes are checked", "[datasets]") {
  const ConfigNode where(YAML::Load("{targets: {t: /y}}"), "exp.yaml", "data");
  const auto row = [](int64_t i) { return "row " + std::to_string(i); };
  const torch::Tensor raw = torch::tensor({0.0, 2.0, -1.0, std::nan("")}, torch::kFloat64);
  const torch::Tensor classes = convertLabels(raw, TaskSpec{"t", TaskKind::kClassification, 3}, -1,
                                              where, "targets", "/y", row);
  REQUIRE(torch::equal(classes, torch::tensor({0, 2, static_cast<int>(kMissingClass),
                                               static_cast<int>(kMissingClass)},
                                              torch::kInt64)));
  REQUIRE_THROWS_WITH(convertLabels(raw, TaskSpec{"t", TaskKind::kClassification, 2}, -1, where,
                                    "targets", "/y", row),
                      Catch::Contains("/y, row 1: class label 2 of task 't' is out of range 0..1"));
  const torch::Tensor regression =
      convertLabels(raw, TaskSpec{"t", TaskKind::kRegression, 1}, -1, where, "targets", "/y", row);
  REQUIRE(regression[2].item<float>() == -1.0f);  // the sentinel is a value for regression
  REQUIRE(std::isnan(regression[3].item<float>()));
}
