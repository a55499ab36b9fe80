// A program of its own: registers a strategy, a dataset and a trunk through
// fulcrum's public API, then runs the fulcrum command line with them, e.g.
//   my-fulcrum list
//   my-fulcrum run experiment.yaml --set strategy.name=inverse_loss
#include <memory>
#include <string>
#include <vector>

// Narrow LibTorch headers rather than <torch/torch.h>: this file is compiled
// without fulcrum's precompiled header.
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "framework/extension_registry.h"
#include "framework/strategy.h"
#include "models/registry.h"
#include "strategies/registry.h"
#include "tools/cli.h"

namespace {

/// w_i = T · (1/L_i) / Σ_j (1/L_j) (detached): the task with the smaller loss
/// gets the smaller weight.
class InverseLoss : public fulcrum::Strategy {
 public:
  explicit InverseLoss(double floor) : floor_(floor) {}
  fulcrum::GradientNeed needs() const override { return fulcrum::GradientNeed::kLosses; }
  fulcrum::StepOutput step(const fulcrum::StepInput& input) override {
    const torch::Tensor losses = torch::stack(input.losses);
    const torch::Tensor inverse = 1.0 / losses.detach().clamp_min(floor_);
    const torch::Tensor weights =
        inverse * static_cast<double>(input.losses.size()) / inverse.sum();
    fulcrum::StepOutput out;
    out.kind = fulcrum::StepOutput::Kind::kObjective;
    out.objective = (weights * losses).sum();
    out.weights = weights.to(torch::kFloat32);
    return out;
  }

 private:
  double floor_;
};

/// data.kind ramp: y_0 = Σ x, y_1 = x_0 − x_1, inputs uniform in [−1, 1]^width.
fulcrum::MultiTaskData makeRamp(const fulcrum::ConfigNode& options,
                                const std::vector<fulcrum::TaskSpec>& tasks,
                                const fulcrum::DatasetContext& context) {
  const int64_t width = options.getInt("width", 4, 2, 1000);
  const int64_t rows = options.getInt("rows", 600, 10, 1000000);
  torch::manual_seed(context.seed);
  const auto split = [&](int64_t n) {
    fulcrum::Split s;
    s.inputs = torch::rand({n, width}) * 2 - 1;
    s.targets = {s.inputs.matmul(torch::ones({width, 1})),
                 (s.inputs.select(1, 0) - s.inputs.select(1, 1)).unsqueeze(1)};
    return s;
  };
  fulcrum::MultiTaskData data;
  data.train = split(rows);
  data.val = split(rows / 5);
  data.test = split(rows / 5);
  data.tasks = tasks;
  data.inputShape = {width};
  return data;
}

}  // namespace

int main(int argc, char** argv) {
  fulcrum::registerStrategy(
      {"inverse_loss", "weights proportional to 1/L_i, summing to T", "out-of-tree example",
       fulcrum::GradientNeed::kLosses,
       [](const fulcrum::ConfigNode& options, const std::vector<fulcrum::TaskSpec>&) {
         return std::make_unique<InverseLoss>(options.getDouble("floor", 1e-6, 1e-12, 1.0));
       }});

  fulcrum::DatasetInfo ramp;
  ramp.name = "ramp";
  ramp.description = "two linear regression tasks on uniform inputs";
  ramp.tasks = [](const fulcrum::ConfigNode& options, const std::vector<fulcrum::TaskSpec>&,
                  const fulcrum::DatasetContext&) {
    options.getInt("width", 4, 2, 1000);  // validated before anything runs
    options.getInt("rows", 600, 10, 1000000);
    return std::vector<fulcrum::TaskSpec>{{"sum", fulcrum::TaskKind::kRegression, 1},
                                          {"difference", fulcrum::TaskKind::kRegression, 1}};
  };
  ramp.load = makeRamp;
  fulcrum::registerDataset(ramp);

  fulcrum::TrunkInfo tanh;
  tanh.name = "tanh_mlp";
  tanh.description = "one Linear + Tanh layer";
  tanh.check = [](const fulcrum::ConfigNode& options, const std::vector<int64_t>&) {
    options.getInt("width", 16, 1, 4096);
  };
  tanh.build = [](const fulcrum::ConfigNode& options, const std::vector<int64_t>& inputShape) {
    fulcrum::TrunkParts parts;
    parts.width = options.getInt("width", 16, 1, 4096);
    parts.lastLinear = torch::nn::Linear(inputShape.at(0), parts.width);
    parts.layers = torch::nn::Sequential(parts.lastLinear, torch::nn::Tanh());
    return parts;
  };
  fulcrum::registerTrunk(tanh);

  return fulcrum::cliMain(argc, argv);
}
