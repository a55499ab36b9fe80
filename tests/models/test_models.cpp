// The model contract and the built-in architectures: parameter counts,
// forward passes by hand, the shared/task split, features, validation.
#include <fmt/format.h>
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <set>

#include "framework/experiment.h"
#include "framework/gradients.h"
#include "framework/run_log.h"
#include "framework/trainer.h"
#include "framework/update.h"
#include "models/cross_stitch.h"
#include "models/dselect_k.h"
#include "models/gated_experts.h"
#include "models/ltb.h"
#include "models/mtan.h"
#include "models/registry.h"
#include "models/soft_sharing.h"
#include "strategies/registry.h"
#include "tests/support/architectures.h"
#include "tests/support/memory_log.h"

using namespace fulcrum;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;

namespace {

/// Two regression tasks of one output on `inputs`-wide examples, with the
/// `model:` mapping `model`.
ExperimentSpec toy(const std::string& model, int64_t inputs = 8,
                   const std::string& strategy = "{name: fixed}") {
  return parseExperiment(fmt::format(R"(
data: {{kind: gradnorm_toy, sigmas: [1, 2], input_dim: {}, output_dim: 1,
       train_size: 24, val_size: 8, test_size: 8}}
model: {}
strategy: {}
)",
                                     inputs, model, strategy),
                         "toy.yaml");
}

int64_t parameterCount(const MultiTaskModel& model) {
  int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  return n;
}

int64_t countOf(const std::vector<torch::Tensor>& tensors) { return countElements(tensors); }

void set(MultiTaskModel& model, const std::string& name, const torch::Tensor& value) {
  torch::NoGradGuard noGrad;
  auto parameters = model.named_parameters();
  REQUIRE(parameters.contains(name));
  parameters[name].copy_(value.view_as(parameters[name]));
}

}  // namespace

TEST_CASE("parameter counts of the worked examples (D_in 8, experts Linear(8,16)+ReLU, T 2)",
          "[models]") {
  // REFERENCES_2 §1: HPS 144 + 34; MMoE E·144 + T(8·E + E) + 34; CGC (1 + 2)·144 + T·9·2 + 34.
  const std::string expert = "trunk: {kind: mlp, hidden: [16]}";
  struct Case {
    std::string model;
    int64_t parameters, shared;
  };
  const std::vector<Case> cases = {
      {"{" + expert + "}", 178, 144},
      {"{architecture: mmoe, experts: 3, " + expert + "}", 520, 3 * 144},
      {"{architecture: cgc, shared_experts: 1, task_experts: 1, " + expert + "}", 502, 144},
      // Level 1: experts 3·144, task gates 2·9·2, shared gate 9·3; level 2 (16 inputs):
      // experts 3·272, task gates 2·17·2; heads 34. Shared: level 1's experts and
      // shared gate (144 + 288 + 27) and level 2's shared expert (272).
      {"{architecture: ple, levels: 2, " + expert + "}", 1413, 731},
      // E·144 + T(8 + 1)(k·b + k) + 34 with E 4, k 2, b 2.
      {"{architecture: dselect_k, experts: 4, k: 2, " + expert + "}", 718, 4 * 144},
      // T columns and α (one stage: 1 × T × T), all shared.
      {"{architecture: cross_stitch, " + expert + "}", 2 * 144 + 4 + 34, 2 * 144 + 4},
      // LTB (hidden [16, 4]): per column 144 + 68, α 1 × 2 × 2; shared: both
      // columns' first stage and α (2·144 + 4), task t its column's Linear(16, 4) and head.
      {"{architecture: ltb, trunk: {kind: mlp, hidden: [16, 4]}}", 2 * 212 + 4 + 10, 2 * 144 + 4},
      // One trunk per task, nothing shared.
      {"{architecture: soft_sharing, penalty: 0.1, " + expert + "}", 2 * 144 + 34, 0},
  };
  for (const auto& c : cases) {
    INFO(c.model);
    const ExperimentSpec spec = toy(c.model);
    const ModelPlan plan = planModel(spec);
    const auto model = makeModel(spec, {8});
    CHECK(parameterCount(*model) == c.parameters);
    CHECK(plan.size.parameters == static_cast<double>(c.parameters));  // the estimate is exact here
    CHECK(countOf(model->sharedParameters()) == c.shared);
    CHECK(countOf(model->sharedParameters()) + countOf(model->taskParameters(0)) +
              countOf(model->taskParameters(1)) ==
          c.parameters);
  }
}

TEST_CASE("mmoe mixes the experts by each task's softmax gate", "[models][mmoe]") {
  // Experts f_e(x) = ReLU((e+1)·x₁): on x = (1, 0) they give 1, 2, 3. Gate
  // logits are the biases: task 0 (0, 0, ln 2) → (1, 1, 2)/4 → 9/4; task 1
  // (ln 3, 0, 0) → (3, 1, 1)/5 → 8/5. Heads: y = 10·m + t.
  const ExperimentSpec spec =
      toy("{architecture: mmoe, experts: 3, trunk: {kind: mlp, hidden: [1]}}", 2);
  const auto model = makeModel(spec, {2});
  for (int e = 0; e < 3; ++e) {
    set(*model, fmt::format("experts.{}.0.weight", e), torch::tensor({e + 1.0, 0.0}));
    set(*model, fmt::format("experts.{}.0.bias", e), torch::zeros({1}));
  }
  for (int t = 0; t < 2; ++t) {
    set(*model, fmt::format("gates.{}.weight", t), torch::zeros({3, 2}));
    set(*model, fmt::format("heads.{}.0.weight", t), torch::tensor({10.0}));
    set(*model, fmt::format("heads.{}.0.bias", t), torch::tensor({static_cast<double>(t)}));
  }
  set(*model, "gates.0.bias", torch::tensor({0.0, 0.0, std::log(2.0)}));
  set(*model, "gates.1.bias", torch::tensor({std::log(3.0), 0.0, 0.0}));

  const ModelOutput out = model->forward({torch::tensor({{1.0f, 0.0f}})});
  REQUIRE(out.outputs.size() == 2);
  CHECK(out.outputs[0].item<double>() == Approx(22.5));
  CHECK(out.outputs[1].item<double>() == Approx(17.0));
  // Features: the three expert outputs, which every task's loss reaches.
  REQUIRE(out.features.size() == 3);
  CHECK(out.features[2].item<double>() == Approx(3.0));
  CHECK(model->featureNames() == std::vector<std::string>{"expert0", "expert1", "expert2"});
  // ∂y_0/∂f_e = 10·g_0,e: the representation rows are the gates times the head.
  AutogradGradientSource source(model->sharedParameters(), model->lastSharedLayer());
  const std::vector<torch::Tensor> losses = {out.outputs[0].sum(), out.outputs[1].sum()};
  source.reset(losses, out.features);
  const torch::Tensor rows = source.representation();
  REQUIRE(rows.sizes() == torch::IntArrayRef({2, 3}));
  CHECK(torch::allclose(rows[0], torch::tensor({2.5f, 2.5f, 5.0f})));
  CHECK(torch::allclose(rows[1], torch::tensor({6.0f, 2.0f, 2.0f})));
  // The last shared layer: every expert's Linear, weight then bias.
  CHECK(countOf(model->lastSharedLayer()) == 3 * 3);
}

TEST_CASE("cgc's gate mixes the shared experts with the task's own only", "[models][cgc]") {
  // Shared expert f_s = x₁; task t's own expert 2(t+1)·x₁ (2 and 4 on x = (1, 0)).
  // Gates (ln 3, 0): (3/4)·1 + (1/4)·own → task 0 1.25, task 1 1.75.
  const ExperimentSpec spec = toy(
      "{architecture: cgc, shared_experts: 1, task_experts: 1, trunk: {kind: mlp, hidden: [1]}}",
      2);
  const auto model = makeModel(spec, {2});
  set(*model, "experts.0.0.weight", torch::tensor({1.0, 0.0}));
  set(*model, "experts.0.0.bias", torch::zeros({1}));
  for (int t = 0; t < 2; ++t) {
    set(*model, fmt::format("task_experts.{}.0.0.weight", t), torch::tensor({2.0 * (t + 1), 0.0}));
    set(*model, fmt::format("task_experts.{}.0.0.bias", t), torch::zeros({1}));
    set(*model, fmt::format("gates.{}.weight", t), torch::zeros({2, 2}));
    set(*model, fmt::format("gates.{}.bias", t), torch::tensor({std::log(3.0), 0.0}));
    set(*model, fmt::format("heads.{}.0.weight", t), torch::tensor({1.0}));
    set(*model, fmt::format("heads.{}.0.bias", t), torch::zeros({1}));
  }
  const ModelOutput out = model->forward({torch::tensor({{1.0f, 0.0f}})});
  CHECK(out.outputs[0].item<double>() == Approx(1.25));
  CHECK(out.outputs[1].item<double>() == Approx(1.75));
  REQUIRE(out.features.size() == 1);  // only the shared expert is a feature
  // Task 1's own expert is its parameter: task 0's loss does not reach it.
  const auto grads = torch::autograd::grad({out.outputs[0].sum()}, model->taskParameters(1), {},
                                           /*retain_graph=*/true, false, /*allow_unused=*/true);
  for (const auto& g : grads) CHECK((!g.defined() || g.abs().sum().item<double>() == 0.0));
}

TEST_CASE("hps with one input batch per task: a feature per batch", "[models][hps]") {
  const ExperimentSpec spec = toy("{trunk: {kind: mlp, hidden: [4]}}", 3);
  const auto model = makeModel(spec, {3});
  const ModelOutput out = model->forward({torch::randn({5, 3}), torch::randn({7, 3})});
  REQUIRE(out.features.size() == 2);
  CHECK(out.outputs[0].size(0) == 5);
  CHECK(out.outputs[1].size(0) == 7);
  CHECK_THROWS_WITH(
      model->forward({torch::randn({5, 3}), torch::randn({5, 3}), torch::randn({5, 3})}),
      Contains("one input batch or one per task, not 3"));
}

TEST_CASE("model options are validated where they are written", "[models][config]") {
  CHECK_THROWS_WITH(
      planModel(toy("{architecture: mmeo}")),
      Contains("toy.yaml:4:23: model.architecture: 'mmeo' is not one of: hps, mmoe, cgc") &&
          Contains("did you mean 'mmoe'"));
  CHECK_THROWS_WITH(planModel(toy("{architecture: mmoe, experts: 0}")),
                    Contains("model.experts: 0 is out of range"));
  CHECK_THROWS_WITH(planModel(toy("{architecture: hps, experts: 3}")),
                    Contains("model.experts: unknown key 'experts'"));
  CHECK_THROWS_WITH(planModel(toy("{architecture: cgc, trunk: {kind: mlp, hiden: [3]}}")),
                    Contains("model.trunk.hiden: unknown key 'hiden' (did you mean 'hidden'?)"));
  CHECK_THROWS_WITH(planModel(toy("{trunk: {kind: lenet}}")),
                    Contains("model.trunk.kind: the lenet trunk takes C × H × W images"));
}

TEST_CASE("a strategy is refused at validation when the model lacks what it needs",
          "[models][strategy]") {
  // An architecture of a program's own: hard sharing without features and
  // without a last shared layer (say, a trunk that ends in a convolution).
  static const bool registered = [] {
    ArchitectureInfo row;
    row.name = "test_bare";
    row.description = "hps without features or last shared layer";
    row.plan = [](const ConfigNode& model, const ModelContext& context) {
      ModelPlan plan = architectureTable().front().plan(model, context);
      plan.provides.features = false;
      plan.provides.lastSharedLayer = false;
      return plan;
    };
    registerArchitecture(row);
    return true;
  }();
  REQUIRE(registered);
  auto refusal = [](const std::string& strategy) -> std::string {
    const ExperimentSpec spec = toy("{architecture: test_bare}", 8, strategy);
    const auto instance = makeStrategy(spec.strategy, spec.tasks);
    try {
      checkStrategyFits(spec, *instance, planModel(spec));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  CHECK_THAT(refusal("{name: graddrop}"),
             Equals("toy.yaml:5:18: strategy.name: strategy 'graddrop' needs features (tensors "
                    "every task's loss passes through) for its representation gradients, which "
                    "architecture 'test_bare' does not have; use another architecture, or a "
                    "strategy option that asks for what it has (`fulcrum list graddrop`)"));
  CHECK_THAT(refusal("{name: gradnorm}"), Contains("needs a last shared layer"));
  CHECK(refusal("{name: gradnorm, layer: all}").empty());
  CHECK(refusal("{name: mgda}").empty());
  CHECK_THAT(refusal("{name: mgda, gradients: representation}"),
             Contains("strategy 'mgda' needs features"));
  CHECK(refusal("{name: uncertainty}").empty());
}

namespace {

/// A model of its own that forgets to list its bias anywhere.
class Forgetful : public MultiTaskModel {
 public:
  Forgetful() {
    weight_ = register_parameter("weight", torch::ones({1, 2}));
    bias_ = register_parameter("bias", torch::zeros({1}));
  }
  ModelOutput forward(const ModelInputs& inputs) override {
    const torch::Tensor y = inputs[0].mm(weight_.t()) + bias_;
    return {{y, y}, {}, {}};
  }
  std::vector<torch::Tensor> sharedParameters() const override { return {weight_}; }
  std::vector<torch::Tensor> taskParameters(std::size_t) const override { return {}; }
  std::vector<std::string> featureNames() const override { return {}; }
  std::size_t taskCount() const override { return 2; }

 private:
  torch::Tensor weight_, bias_;
};

}  // namespace

TEST_CASE("a model whose parameters are not all shared or a task's is refused before step 0",
          "[models][trainer]") {
  const ExperimentSpec spec = toy("{}", 2);
  const MultiTaskData data = loadData(spec);
  Forgetful model;
  auto strategy = makeStrategy(spec.strategy, spec.tasks);
  struct NoLog : RunLog {
    bool begun = false;
    void begin(const TrialDescription&) override { begun = true; }
    void step(const StepRecord&) override {}
    void gradients(const GradientRecord&) override {}
    void epoch(const EpochRecord&) override {}
    void end(const std::string&, const std::string&) override {}
  } log;
  CHECK_THROWS_WITH(train(spec, data, model, *strategy, log, {}),
                    Equals("the model's parameter 'bias' is neither shared nor any task's"));
  CHECK_FALSE(log.begun);
}

TEST_CASE(
    "shared parameters are those several tasks' losses reach, task t's those only its loss reaches",
    "[models]") {
  const std::string expert = "trunk: {kind: mlp, hidden: [6]}";
  for (const std::string& model :
       {"{" + expert + "}", "{architecture: mmoe, experts: 2, " + expert + "}",
        "{architecture: cgc, shared_experts: 2, task_experts: 1, " + expert + "}",
        "{architecture: ple, levels: 2, " + expert + "}",
        "{architecture: ple, levels: 3, shared_experts: 2, task_experts: 2, " + expert + "}",
        std::string("{architecture: cross_stitch, trunk: {kind: mlp, hidden: [6, 4]}}"),
        std::string("{architecture: mtan, trunk: {kind: mlp, hidden: [6, 4]}}"),
        std::string("{architecture: ltb, trunk: {kind: mlp, hidden: [6, 4]}}")}) {
    INFO(model);
    // In LTB's warm-up α is a constant (its gradient after it: the ltb test).
    const bool ltb = model.find("ltb") != std::string::npos;
    const ExperimentSpec spec = toy(model, 5);
    const auto net = makeModel(spec, {5});
    const ModelOutput out = net->forward({torch::randn({64, 5})});
    // Which tasks' losses reach each parameter tensor (a nonzero gradient).
    std::map<const void*, int> reached;
    for (std::size_t t = 0; t < 2; ++t) {
      const auto all = net->parameters();
      const auto grads =
          torch::autograd::grad({out.outputs[t].square().sum()}, all, {}, true, false, true);
      for (std::size_t k = 0; k < all.size(); ++k) {
        if (grads[k].defined() && grads[k].abs().sum().item<double>() > 0)
          reached[all[k].unsafeGetTensorImpl()] |= 1 << t;
      }
    }
    for (const auto& p : net->sharedParameters()) {
      if (ltb && p.is_same(net->named_parameters()["alpha"])) continue;
      CHECK(reached[p.unsafeGetTensorImpl()] == 3);
    }
    for (std::size_t t = 0; t < 2; ++t) {
      for (const auto& p : net->taskParameters(t))
        CHECK(reached[p.unsafeGetTensorImpl()] == (1 << t));
    }
    // Every feature is reached by a loss (by both where it is shared: the
    // experts' outputs; cross-stitch's mixed outputs and PLE's task branches
    // are each task's own); that they cut every path from the shared
    // parameters is the test below.
    for (const auto& feature : out.features) {
      int reachedBy = 0;
      for (std::size_t t = 0; t < 2; ++t) {
        const auto g = torch::autograd::grad({out.outputs[t].square().sum()}, {feature}, {}, true,
                                             false, true);
        if (g[0].defined() && g[0].abs().sum().item<double>() > 0) ++reachedBy;
      }
      CHECK(reachedBy > 0);
    }
  }
}

TEST_CASE("dselect_k: binary-coded selectors through the smooth step, and its regulariser",
          "[models][dselect_k]") {
  // S(0.25) = −2/64 + 3/8 + 1/2 = 0.84375 (γ = 1). Codes MSB first: s_e for
  // e = 00, 01, 10, 11 is (1−S)², (1−S)S, S(1−S), S².
  const double S = 0.84375;
  const std::vector<double> expected = {(1 - S) * (1 - S), (1 - S) * S, S * (1 - S), S * S};
  for (const int64_t experts : {4, 3}) {
    INFO("E = " << experts);
    const ExperimentSpec spec =
        toy(fmt::format("{{architecture: dselect_k, experts: {}, k: 1, "
                        "entropy_weight: 0.5, trunk: {{kind: mlp, hidden: [2]}}}}",
                        experts),
            2);
    const auto model = makeModel(spec, {2});
    auto* dselect = dynamic_cast<DSelectKModel*>(model.get());
    REQUIRE(dselect != nullptr);
    for (int t = 0; t < 2; ++t) {
      set(*model, fmt::format("selector_logits.{}.weight", t), torch::zeros({2, 2}));
      set(*model, fmt::format("selector_logits.{}.bias", t), torch::tensor({0.25, 0.25}));
    }
    const torch::Tensor x = torch::tensor({{1.0f, -1.0f}});
    const torch::Tensor s = dselect->selectors(0, x);
    REQUIRE(s.sizes() == torch::IntArrayRef({1, 1, experts}));
    double entropy = 0.0, mass = 0.0;
    for (int64_t e = 0; e < experts; ++e) {
      CHECK(s[0][0][e].item<double>() == Approx(expected[static_cast<std::size_t>(e)]));
      entropy -= expected[static_cast<std::size_t>(e)] *
                 std::log(expected[static_cast<std::size_t>(e)] + 1e-6);
      mass += expected[static_cast<std::size_t>(e)];
    }
    // k = 1: the expert weights are the selector itself.
    CHECK(torch::allclose(dselect->expertWeights(0, x, s), s[0]));
    // Both tasks alike: 2 · (0.5 · entropy + [E not a power of 2] / Σ_e s).
    const ModelOutput out = model->forward({x});
    REQUIRE(out.extraLosses.size() == 1);
    const double regularizer = 2 * (0.5 * entropy + (experts == 3 ? 1.0 / mass : 0.0));
    CHECK(out.extraLosses[0].item<double>() == Approx(regularizer));
    CHECK(model->extraLossNames() == std::vector<std::string>{"dselect_k_regularizer"});
  }
  // Beyond ±γ/2 the step saturates: logits (0.6, −0.7) select expert 2 (code 10) alone.
  const ExperimentSpec spec =
      toy("{architecture: dselect_k, experts: 4, k: 1, trunk: {kind: mlp, hidden: [2]}}", 2);
  const auto model = makeModel(spec, {2});
  set(*model, "selector_logits.0.weight", torch::zeros({2, 2}));
  set(*model, "selector_logits.0.bias", torch::tensor({0.6, -0.7}));
  const torch::Tensor s = dynamic_cast<DSelectKModel&>(*model).selectors(0, torch::ones({1, 2}));
  CHECK(torch::equal(s[0][0], torch::tensor({0.0f, 0.0f, 1.0f, 0.0f})));
  CHECK_THROWS_WITH(planModel(toy("{architecture: dselect_k, experts: 3, k: 4}")),
                    Contains("model.k: 4 is out of range"));
}

TEST_CASE("soft_sharing: the penalty λ Σ‖θ_i − θ_j‖², its gradient added to the update",
          "[models][soft_sharing]") {
  // Trunks Linear(2,1): θ_0 = (1, 2 | 0), θ_1 = (0, 0 | 1): ‖Δ‖² = 6, λ = 0.5 → 3.
  const ExperimentSpec spec =
      toy("{architecture: soft_sharing, penalty: 0.5, trunk: {kind: mlp, hidden: [1]}}", 2);
  const auto model = makeModel(spec, {2});
  set(*model, "trunks.0.0.weight", torch::tensor({1.0, 2.0}));
  set(*model, "trunks.0.0.bias", torch::zeros({1}));
  set(*model, "trunks.1.0.weight", torch::zeros({2}));
  set(*model, "trunks.1.0.bias", torch::ones({1}));
  CHECK(model->forward({torch::ones({3, 2})}).extraLosses.at(0).item<double>() == Approx(3.0));
  CHECK(model->sharedParameters().empty());
  CHECK(model->forward({torch::ones({3, 2})}).features.empty());
  CHECK_THROWS_WITH(planModel(toy("{architecture: soft_sharing}")),
                    Contains("toy.yaml:4:8: model.penalty: required number is missing"));

  // Through the trainer with a strategy whose objective is 0·Σ L_i: only the
  // penalty moves the trunks. Its gradient 2λ(θ_0 − θ_1) under SGD (lr η)
  // shrinks θ_0 − θ_1 by 1 − 4λη = 0.6 (λ = 1, η = 0.1) per step, the penalty by 0.36.
  ExperimentSpec trained = parseExperiment(R"(
data: {kind: gradnorm_toy, sigmas: [1, 2], input_dim: 2, output_dim: 1, train_size: 24, val_size: 8, test_size: 8}
model: {architecture: soft_sharing, penalty: 1, trunk: {kind: mlp, hidden: [3]}}
train: {epochs: 1, batch_size: 8, checkpoint_every: 0, log_gradients_every: 0, optimizer: {kind: sgd, lr: 0.1}}
strategy: {name: zero}
)",
                                           "soft.yaml");
  const MultiTaskData data = loadData(trained);
  testing::LambdaStrategy zero;
  zero.onStep = [](const StepInput& input) {
    StepOutput out;
    out.objective = torch::stack(input.losses).sum() * 0.0;
    out.weights = torch::zeros({static_cast<int64_t>(input.losses.size())});
    return out;
  };
  testing::MemoryLog log;
  REQUIRE(train(trained, data, *makeModel(trained, data.inputShape), zero, log, {}).status ==
          "completed");
  // The architecture's loss, then the trainer's own: the learning rate.
  REQUIRE(log.description.diagnostics == std::vector<std::string>{"soft_sharing_penalty", "lr"});
  REQUIRE(log.steps.size() == 3);
  for (std::size_t k = 0; k + 1 < log.steps.size(); ++k) {
    CHECK(log.steps[k + 1].diagnostics[0] / log.steps[k].diagnostics[0] ==
          Approx(0.36).epsilon(1e-4));
  }
}

TEST_CASE("cross_stitch mixes the columns after each stage by α", "[models][cross_stitch]") {
  // Columns ReLU(x₁) and ReLU(x₂) on x = (3, 5): 3 and 5; α = [[0.9, 0.1], [0.1, 0.9]]
  // gives 3.2 and 4.8; heads y = m.
  const ExperimentSpec spec =
      toy("{architecture: cross_stitch, trunk: {kind: mlp, hidden: [1]}}", 2);
  const auto model = makeModel(spec, {2});
  set(*model, "columns.0.0.weight", torch::tensor({1.0, 0.0}));
  set(*model, "columns.1.0.weight", torch::tensor({0.0, 1.0}));
  for (int t = 0; t < 2; ++t) {
    set(*model, fmt::format("columns.{}.0.bias", t), torch::zeros({1}));
    set(*model, fmt::format("heads.{}.0.weight", t), torch::ones({1}));
    set(*model, fmt::format("heads.{}.0.bias", t), torch::zeros({1}));
  }
  const ModelOutput out = model->forward({torch::tensor({{3.0f, 5.0f}})});
  CHECK(out.outputs[0].item<double>() == Approx(3.2));
  CHECK(out.outputs[1].item<double>() == Approx(4.8));
  REQUIRE(out.features.size() == 2);  // the columns after the last mixing
  CHECK(out.features[1].item<double>() == Approx(4.8));
  // Two stages (hidden [4, 3]): α is 2 × T × T, one mixing after each Linear + ReLU.
  const auto deeper = makeModel(toy("{architecture: cross_stitch, init_same: 1, init_other: 0, "
                                    "trunk: {kind: mlp, hidden: [4, 3]}}",
                                    2),
                                {2});
  const torch::Tensor alpha = deeper->named_parameters()["alpha"];
  CHECK(alpha.sizes() == torch::IntArrayRef({2, 2, 2}));
  CHECK(torch::equal(alpha[1], torch::eye(2)));
}

TEST_CASE(
    "ltb: the warm-up sums the columns, then each stage reads the parent Gumbel-softmax picks",
    "[models][ltb]") {
  // Stage 0: columns ReLU(x₁), ReLU(x₂) on x = (3, 5) give 3 and 5; stage 1
  // of column t is ReLU((t+1)·in); heads y = out.
  auto build = [](const std::string& options) {
    const auto model = makeModel(
        toy("{architecture: ltb, " + options + "trunk: {kind: mlp, hidden: [1, 1]}}", 2), {2});
    set(*model, "columns.0.0.weight", torch::tensor({1.0, 0.0}));
    set(*model, "columns.1.0.weight", torch::tensor({0.0, 1.0}));
    for (int t = 0; t < 2; ++t) {
      set(*model, fmt::format("columns.{}.0.bias", t), torch::zeros({1}));
      set(*model, fmt::format("columns.{}.2.weight", t), torch::tensor({t + 1.0}));
      set(*model, fmt::format("columns.{}.2.bias", t), torch::zeros({1}));
      set(*model, fmt::format("heads.{}.0.weight", t), torch::ones({1}));
      set(*model, fmt::format("heads.{}.0.bias", t), torch::zeros({1}));
    }
    return model;
  };
  const torch::Tensor x = torch::tensor({{3.0f, 5.0f}});
  const auto net = build("");
  auto& ltb = dynamic_cast<LtbModel&>(*net);
  CHECK(net->named_parameters()["alpha"].sizes() == torch::IntArrayRef({1, 2, 2}));

  SECTION("warm-up: never told the epoch, and the first E/100 epochs") {
    CHECK(ltb.warmingUp());
    const ModelOutput out = net->forward({x});
    CHECK(out.outputs[0].item<double>() == Approx(8.0));   // 3 + 5
    CHECK(out.outputs[1].item<double>() == Approx(16.0));  // 2·(3 + 5)
    REQUIRE(out.features.size() == 2);                     // the last stages' inputs
    CHECK(out.features[1].item<double>() == Approx(8.0));
    ltb.beginEpoch(1, 200);
    CHECK(ltb.warmingUp());  // 1 < 200/100
    ltb.beginEpoch(2, 200);
    CHECK_FALSE(ltb.warmingUp());
    ltb.beginEpoch(0, 40);
    CHECK(ltb.warmingUp());
    ltb.beginEpoch(1, 40);
    CHECK_FALSE(ltb.warmingUp());
    auto own = build("warmup_epochs: 3, ");
    auto& three = dynamic_cast<LtbModel&>(*own);
    three.beginEpoch(2, 40);
    CHECK(three.warmingUp());
    three.beginEpoch(3, 40);
    CHECK_FALSE(three.warmingUp());
  }

  SECTION("after it: one parent per column and stage, τ = (E/20)/√(e+1)") {
    ltb.beginEpoch(3, 40);
    CHECK(ltb.temperature() == Approx(1.0));  // (40/20)/√4
    ltb.beginEpoch(10, 40);
    CHECK(ltb.temperature() == Approx(2.0 / std::sqrt(11.0)));
    // Logits ±50: the draw is the larger one (a flip has probability ~e⁻¹⁰⁰).
    set(*net, "alpha", torch::tensor({50.0, -50.0, -50.0, 50.0}));
    ModelOutput out = net->forward({x});
    CHECK(out.outputs[0].item<double>() == Approx(3.0));   // column 0 reads column 0
    CHECK(out.outputs[1].item<double>() == Approx(10.0));  // column 1 reads column 1
    set(*net, "alpha", torch::tensor({-50.0, 50.0, -50.0, 50.0}));
    out = net->forward({x});
    CHECK(out.outputs[0].item<double>() == Approx(5.0));  // both branch from column 1
    CHECK(out.outputs[1].item<double>() == Approx(10.0));
    // Straight through: row t of α gets its gradient from task t's loss alone.
    for (std::size_t t = 0; t < 2; ++t) {
      const torch::Tensor g =
          torch::autograd::grad({out.outputs[t].sum()}, {net->named_parameters()["alpha"]}, {},
                                /*retain_graph=*/true)[0];
      CHECK(g[0][1 - static_cast<int64_t>(t)].abs().sum().item<double>() == 0.0);
    }
  }

  SECTION("the draws follow softmax(α): parent 1 with probability 3/4 for logits (0, ln 3)") {
    torch::manual_seed(7);
    ltb.beginEpoch(19, 20);  // τ = 1/√20; a hard draw's frequency does not depend on τ
    set(*net, "alpha", torch::tensor({0.0, std::log(3.0), 0.0, 0.0}));
    double parentOne = 0;
    const int draws = 4000;
    for (int k = 0; k < draws; ++k) {
      const torch::Tensor a = ltb.branching();
      CHECK(a.sum().item<double>() == Approx(2.0));  // one-hot rows
      parentOne += a[0][0][1].item<double>();
    }
    CHECK(parentOne / draws == Approx(0.75).margin(0.03));  // σ ≈ 0.007
  }

  SECTION("evaluation: sample (as LibMTL) or argmax") {
    ltb.beginEpoch(5, 10);
    set(*net, "alpha", torch::tensor({0.1, 0.0, 0.0, 0.1}));
    auto other = build("evaluation: argmax, ");
    other->beginEpoch(5, 10);
    set(*other, "alpha", torch::tensor({0.1, 0.0, 0.0, 0.1}));
    net->eval();
    other->eval();
    std::set<double> sampled, argmax;
    torch::manual_seed(3);
    for (int k = 0; k < 40; ++k) {
      sampled.insert(net->forward({x}).outputs[0].item<double>());
      argmax.insert(other->forward({x}).outputs[0].item<double>());
    }
    CHECK(sampled == std::set<double>{3.0, 5.0});
    CHECK(argmax == std::set<double>{3.0});
  }

  SECTION("one batch per task: every column on task t's batch for task t") {
    const ModelOutput out = net->forward({x, torch::tensor({{1.0f, 1.0f}, {0.0f, 2.0f}})});
    CHECK(out.outputs[0].item<double>() == Approx(8.0));
    CHECK(torch::allclose(out.outputs[1], torch::tensor({{4.0f}, {4.0f}})));
  }
}

TEST_CASE("ltb: refused on a trunk of one stage, located", "[models][ltb][config]") {
  CHECK_THROWS_WITH(planModel(toy("{architecture: ltb, trunk: {kind: mlp, hidden: [8]}}")),
                    Contains("model.trunk.kind: ltb chooses each column's parent between trunk "
                             "stages, so it needs a trunk of at least 2 stages; this 'mlp' trunk "
                             "has 1"));
  CHECK_THROWS_WITH(planModel(toy("{architecture: ltb, evaluation: mode}")),
                    Contains("model.evaluation"));
}

namespace {

/// The two stages y0 → y1 of a small CSV funnel (8 inputs), with `model`.
ExperimentSpec funnel(const std::string& model, const std::string& strategy = "{name: fixed}") {
  static const testing::TemporaryFunnel file("models", 40, 8, 2);
  return parseExperiment(file.yaml + "model: " + model + "\nstrategy: " + strategy + "\n",
                         "funnel.yaml");
}

}  // namespace

TEST_CASE("cascade: task t predicts that every stage up to t happens (ESMM)", "[models][cascade]") {
  const std::string model = "{architecture: cascade, trunk: {kind: mlp, hidden: [16]}}";
  const auto net = makeModel(funnel(model), {8});

  SECTION("parameters: the trunk and every tower but the last are shared") {
    // 8·16 + 16 trunk, towers Linear(16, 1) of 17: 144 + 17 shared, 17 of task 1, none of task 0.
    CHECK(parameterCount(*net) == 178);
    CHECK(countOf(net->sharedParameters()) == 161);
    CHECK(net->taskParameters(0).empty());
    CHECK(countOf(net->taskParameters(1)) == 17);
    CHECK(net->lastSharedLayer().size() == 2);  // the trunk's Linear(8, 16)
    // Both losses reach the shared tensors; only task 1's its tower.
    const ModelOutput out = net->forward({torch::randn({32, 8})});
    CHECK(out.features.empty());
    for (std::size_t t = 0; t < 2; ++t) {
      const auto all = net->parameters();
      const auto grads =
          torch::autograd::grad({out.outputs[t].square().sum()}, all, {}, true, false, true);
      std::map<const void*, bool> reached;
      for (std::size_t k = 0; k < all.size(); ++k)
        reached[all[k].unsafeGetTensorImpl()] =
            grads[k].defined() && grads[k].abs().sum().item<double>() > 0;
      for (const auto& p : net->sharedParameters()) CHECK(reached[p.unsafeGetTensorImpl()]);
      for (const auto& p : net->taskParameters(1))
        CHECK(reached[p.unsafeGetTensorImpl()] == (t == 1));
    }
  }

  SECTION("outputs: logit(σ(a₀)) and logit(σ(a₀)σ(a₁)), with ESMM's gradient") {
    // Towers constant: a₀ = 0 (pCTR ½), a₁ = ln 3 (pCVR ¾): pCTCVR = 3/8, logit ln(3/5).
    set(*net, "towers.0.0.weight", torch::zeros({16}));
    set(*net, "towers.0.0.bias", torch::zeros({1}));
    set(*net, "towers.1.0.weight", torch::zeros({16}));
    set(*net, "towers.1.0.bias", torch::full({1}, std::log(3.0)));
    const ModelOutput out = net->forward({torch::randn({1, 8})});
    CHECK(out.outputs[0].item<double>() == Approx(0.0).margin(1e-7));
    CHECK(out.outputs[1].item<double>() == Approx(std::log(0.6)).epsilon(1e-6));
    // On an unclicked row (ctcvr label 0) the loss −log(1 − p₀p₁) moves a₁ by
    // p₀p₁(1 − p₁)/(1 − p₀p₁) = (3/8)(1/4)/(5/8) = 0.15.
    const torch::Tensor loss =
        torch::binary_cross_entropy_with_logits(out.outputs[1], torch::zeros({1, 1}));
    const auto bias = net->named_parameters()["towers.1.0.bias"];
    CHECK(torch::autograd::grad({loss}, {bias})[0].item<double>() == Approx(0.15).epsilon(1e-5));
  }

  SECTION("outputs stay finite where the probabilities reach 0 or 1") {
    set(*net, "towers.0.0.weight", torch::zeros({16}));
    set(*net, "towers.1.0.weight", torch::zeros({16}));
    set(*net, "towers.0.0.bias", torch::full({1}, -40.0));
    set(*net, "towers.1.0.bias", torch::full({1}, -40.0));
    // log p = 2·log σ(−40) = −80 − 2·log(1 + e⁻⁴⁰); logit = log p − log(1 − p) = −80 to float
    // precision.
    CHECK(net->forward({torch::randn({1, 8})}).outputs[1].item<double>() == Approx(-80.0));
    set(*net, "towers.0.0.bias", torch::full({1}, 40.0));
    set(*net, "towers.1.0.bias", torch::full({1}, 40.0));
    // p = 1 − 2e⁻⁴⁰ to first order (1 in float), logit −log(2e⁻⁴⁰) = 40 − ln 2.
    CHECK(net->forward({torch::randn({1, 8})}).outputs[1].item<double>() ==
          Approx(40.0 - std::log(2.0)).epsilon(1e-5));
  }
}

TEST_CASE("cascade: refused on tasks that are not binary stages", "[models][cascade][config]") {
  CHECK_THROWS_WITH(planModel(toy("{architecture: cascade}")),
                    Contains("model.architecture: a cascade's tasks are funnel stages, each "
                             "binary; task '") &&
                        Contains("' is regression"));
}

TEST_CASE("mtan: per-task soft attention over the trunk's stages", "[models][mtan]") {
  SECTION("parameter counts") {
    // One stage (mlp [16] on 8 inputs): trunk 144; per task att(16 → 16 → 16) 272 + 272;
    // heads 2 · 17. Two stages ([16, 8]): trunk 144 + 136, bridge Linear(16, 8) 136 (shared);
    // per task att₀ 544 and att₁(2·8 → 8 → 8) 136 + 72; heads 2 · 9.
    struct Case {
      std::string trunk;
      int64_t parameters, shared;
    };
    for (const Case& c :
         {Case{"{kind: mlp, hidden: [16]}", 144 + 2 * 544 + 34, 144},
          Case{"{kind: mlp, hidden: [16, 8]}", 280 + 136 + 2 * (544 + 208) + 18, 280 + 136}}) {
      INFO(c.trunk);
      const ExperimentSpec spec = toy("{architecture: mtan, trunk: " + c.trunk + "}");
      const auto net = makeModel(spec, {8});
      CHECK(parameterCount(*net) == c.parameters);
      CHECK(planModel(spec).size.parameters == static_cast<double>(c.parameters));
      CHECK(countOf(net->sharedParameters()) == c.shared);
    }
  }

  SECTION("on LeNet: image attention at the conv stages, flat at the fc") {
    // Stages [10, 14, 14], [20, 5, 5], [50]. Per task: att₀ conv1×1(10, 10) + BN + conv1×1(10, 10)
    // + BN = 110 + 20 + 110 + 20; att₁ (40 → 20 → 20) 820 + 40 + 420 + 40; att₂ (100 → 50 → 50)
    // 5050 + 2550: 9180. Bridges: conv1×1(10, 20) + BN 220 + 40, Linear(500, 50) 25050.
    // LeNet 30890, heads 2 · Linear(50, 10).
    const ExperimentSpec spec = parseExperiment(
        "data: {kind: multi_fashion}\nmodel: {architecture: mtan, trunk: {kind: lenet}}\n"
        "strategy: {name: fixed}\n",
        "mtan.yaml");
    const auto net = makeModel(spec, {1, 36, 36});
    CHECK(parameterCount(*net) == 30890 + 260 + 25050 + 2 * 9180 + 2 * 510);
    CHECK(countOf(net->sharedParameters()) == 30890 + 260 + 25050);
    auto& mtan = dynamic_cast<MtanModel&>(*net);
    const auto masks = mtan.masks(1, torch::randn({3, 1, 36, 36}));
    REQUIRE(masks.size() == 3);
    CHECK(masks[0].sizes() == torch::IntArrayRef({3, 10, 14, 14}));
    CHECK(masks[1].sizes() == torch::IntArrayRef({3, 20, 5, 5}));
    CHECK(masks[2].sizes() == torch::IntArrayRef({3, 50}));
    CHECK(net->forward({torch::randn({3, 1, 36, 36})}).outputs[0].sizes() ==
          torch::IntArrayRef({3, 10}));
  }

  SECTION("a task's output is its head on mask ⊙ stage output") {
    // Trunk ReLU(I·x) on x = (1, 2): s = (1, 2). Task 0's mask σ(0·ReLU(0·s) + (0, ln 3)) =
    // (1/2, 3/4), attended (0.5, 1.5); task 1's bias (ln 3, 0): (0.75, 1). Heads y = a₁ + a₂.
    const auto net =
        makeModel(toy("{architecture: mtan, trunk: {kind: mlp, hidden: [2]}}", 2), {2});
    set(*net, "trunk.0.weight", torch::eye(2));
    set(*net, "trunk.0.bias", torch::zeros({2}));
    for (int t = 0; t < 2; ++t) {
      for (int k : {0, 2}) {
        set(*net, fmt::format("attention.{}.0.{}.weight", t, k), torch::zeros({2, 2}));
        set(*net, fmt::format("attention.{}.0.{}.bias", t, k), torch::zeros({2}));
      }
      set(*net, fmt::format("heads.{}.0.weight", t), torch::ones({2}));
      set(*net, fmt::format("heads.{}.0.bias", t), torch::zeros({1}));
    }
    set(*net, "attention.0.0.2.bias", torch::tensor({0.0, std::log(3.0)}));
    set(*net, "attention.1.0.2.bias", torch::tensor({std::log(3.0), 0.0}));
    const ModelOutput out = net->forward({torch::tensor({{1.0f, 2.0f}})});
    CHECK(out.outputs[0].item<double>() == Approx(2.0));
    CHECK(out.outputs[1].item<double>() == Approx(1.75));
    CHECK(out.features.empty());
  }
}

TEST_CASE("features: per_task gives each task's gated mixture, its own block of the rows",
          "[models][features]") {
  for (const std::string architecture :
       {"mmoe, experts: 2", "cgc, shared_experts: 1, task_experts: 1", "ple, levels: 2",
        "dselect_k, experts: 3, k: 2"}) {
    INFO(architecture);
    const std::string trunk = ", trunk: {kind: mlp, hidden: [8]}}";
    const auto experts = makeModel(toy("{architecture: " + architecture + trunk), {8});
    const auto model =
        makeModel(toy("{architecture: " + architecture + ", features: per_task" + trunk), {8});
    CHECK(model->featureNames() == std::vector<std::string>{"mixture0", "mixture1"});
    // The same parameters, only the features differ.
    CHECK(parameterCount(*model) == parameterCount(*experts));
    const ModelOutput out = model->forward({torch::randn({5, 8})});
    REQUIRE(out.features.size() == 2);
    const std::vector<torch::Tensor> losses = {out.outputs[0].square().mean(),
                                               out.outputs[1].abs().mean()};
    AutogradGradientSource source(model->sharedParameters(), model->lastSharedLayer());
    source.reset(losses, out.features);
    const torch::Tensor rows = source.representation();
    // Each mixture is B × 8, its head's input: task t's row lives in block t.
    REQUIRE(rows.sizes() == torch::IntArrayRef({2, 2 * 5 * 8}));
    CHECK(rows[0].narrow(0, 40, 40).abs().sum().item<double>() == 0.0);
    CHECK(rows[1].narrow(0, 0, 40).abs().sum().item<double>() == 0.0);
    CHECK(rows[0].narrow(0, 0, 40).abs().sum().item<double>() > 0.0);
    CHECK(rows[1].narrow(0, 40, 40).abs().sum().item<double>() > 0.0);
  }
  CHECK_THROWS_WITH(planModel(toy("{architecture: mmoe, features: shared}")),
                    Contains("model.features: 'shared' is not one of: experts, per_task"));
}

TEST_CASE("features cut every path from the shared parameters to the losses",
          "[models][features]") {
  // With the direction d = Σ w_t ∂L_t/∂features, the representation update
  // (d back-propagated from the features, each task's own parameters
  // ∂(Σ w L)/∂φ) must be exactly the gradient of Σ w_t L_t: a shared
  // parameter reached around the features, or one between them and the
  // losses, would get a wrong gradient from every representation strategy.
  for (const testing::TinyArchitecture& row : testing::tinyArchitectures()) {
    if (row.binaryTasks) continue;
    for (const char* trunk : {"[8]", "[8, 4]"}) {
      std::string model = row.model;
      const std::size_t at = model.find("[8]");
      if (at == std::string::npos && std::string(trunk) != "[8]") continue;
      if (at != std::string::npos) model.replace(at, 3, trunk);
      // Deeper variants: three PLE levels, two shared experts.
      for (const std::string& variant :
           {model, model.find("ple") != std::string::npos
                       ? "{architecture: ple, levels: 3, shared_experts: 2, task_experts: 1, "
                         "trunk: {kind: mlp, hidden: " +
                             std::string(trunk) + "}}"
                       : std::string()}) {
        if (variant.empty()) continue;
        INFO(variant);
        const ExperimentSpec spec = toy(variant, 8);
        if (!planModel(spec).provides.features) continue;
        const auto net = makeModel(spec, {8});
        net->beginEpoch(1, 2);  // LTB: after its warm-up, on a sampled branching
        const ModelOutput out = net->forward({torch::randn({16, 8})});
        const std::vector<torch::Tensor> losses = {out.outputs[0].square().mean(),
                                                   (out.outputs[1] - 1).abs().mean()};
        const torch::Tensor weights = torch::tensor({0.3, 0.7});
        torch::Tensor direction;
        for (std::size_t t = 0; t < 2; ++t) {
          std::vector<torch::Tensor> flat;
          for (const auto& g :
               torch::autograd::grad({losses[t]}, out.features, {}, true, false, true))
            flat.push_back(g.defined() ? g.flatten() : torch::Tensor());
          for (std::size_t k = 0; k < flat.size(); ++k) {
            if (!flat[k].defined()) flat[k] = torch::zeros({out.features[k].numel()});
          }
          const torch::Tensor row_t = weights[static_cast<int64_t>(t)] * torch::cat(flat);
          direction = direction.defined() ? direction + row_t : row_t;
        }
        StepOutput update;
        update.kind = StepOutput::Kind::kRepresentationGradient;
        update.direction = direction;
        update.weights = weights;
        std::vector<torch::Tensor> own;
        for (std::size_t t = 0; t < 2; ++t) {
          for (const auto& p : net->taskParameters(t)) own.push_back(p);
        }
        net->zero_grad();
        applyUpdate(update, {net->sharedParameters(), own, losses, out.features});
        std::map<std::string, torch::Tensor> viaFeatures;
        for (const auto& item : net->named_parameters()) {
          viaFeatures[item.key()] = item.value().grad().defined() ? item.value().grad().clone()
                                                                  : torch::zeros_like(item.value());
        }
        net->zero_grad();
        (0.3 * losses[0] + 0.7 * losses[1]).backward();
        for (const auto& item : net->named_parameters()) {
          INFO(item.key());
          const torch::Tensor expected =
              item.value().grad().defined() ? item.value().grad() : torch::zeros_like(item.value());
          CHECK(torch::allclose(viaFeatures[item.key()], expected, 1e-5, 1e-6));
        }
      }
    }
  }
}
