#include "framework/landscape.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "framework/gradients.h"
#include "framework/trainer.h"
#include "framework/update.h"

namespace fulcrum {

namespace {

constexpr double kLogFloor = 5e-6;

/// log(max(|u|, floor)) + 6 and its derivative in u. As with autograd's
/// clamp, the gradient passes where |u| ≥ floor and is 0 below it.
std::pair<double, double> logAbs(double u) {
  const double magnitude = std::abs(u);
  if (magnitude < kLogFloor) return {std::log(kLogFloor) + 6.0, 0.0};
  return {std::log(magnitude) + 6.0, 1.0 / u};
}

/// max(v, 0) and its derivative given dv: like autograd's clamp(min = 0),
/// the gradient passes at v = 0 too (the start (0, 0) depends on it).
std::pair<double, double> positivePart(double v, double dv) {
  return v >= 0.0 ? std::make_pair(v, dv) : std::make_pair(0.0, 0.0);
}

bool finite(const Point2& p) { return std::isfinite(p[0]) && std::isfinite(p[1]); }

Point2 readPoint(const torch::Tensor& x) {
  const torch::Tensor values = x.detach().to(torch::kFloat64).contiguous();
  return {values.data_ptr<double>()[0], values.data_ptr<double>()[1]};
}

Point2 readPair(const torch::Tensor& tensor) {
  const torch::Tensor values = tensor.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  if (values.numel() != 2) {
    throw std::invalid_argument(
        fmt::format("the strategy reported {} weights for 2 tasks", values.numel()));
  }
  return {values.data_ptr<double>()[0], values.data_ptr<double>()[1]};
}

}  // namespace

LandscapeValue evaluateLandscape(const Point2& x, const Point2& scales) {
  const double x1 = x[0];
  const double x2 = x[1];
  const double t = std::tanh(x2);
  const double dt = 1.0 - t * t;
  // f1: 0.5(−x1−7) − tanh(−x2) = −0.5 x1 − 3.5 + tanh(x2).
  const auto [f1, df1du] = logAbs(-0.5 * x1 - 3.5 + t);
  const Point2 df1{-0.5 * df1du, dt * df1du};
  // f2: 0.5(−x1+3) + tanh(−x2) + 2 = −0.5 x1 + 3.5 − tanh(x2).
  const auto [f2, df2du] = logAbs(-0.5 * x1 + 3.5 - t);
  const Point2 df2{-0.5 * df2du, -dt * df2du};
  const double tail = 0.1 * (x2 + 8.0) * (x2 + 8.0);
  const double g1 = ((x1 - 7.0) * (x1 - 7.0) + tail) / 10.0 - 20.0;
  const double g2 = ((x1 + 7.0) * (x1 + 7.0) + tail) / 10.0 - 20.0;
  const Point2 dg1{(x1 - 7.0) / 5.0, (x2 + 8.0) / 50.0};
  const Point2 dg2{(x1 + 7.0) / 5.0, (x2 + 8.0) / 50.0};
  const double h = std::tanh(x2 / 2.0);
  const double dh = 0.5 * (1.0 - h * h);
  const auto [c1, dc1] = positivePart(h, dh);
  const auto [c2, dc2] = positivePart(-h, -dh);

  LandscapeValue value;
  const double f[2] = {f1, f2};
  const double g[2] = {g1, g2};
  const Point2 df[2] = {df1, df2};
  const Point2 dg[2] = {dg1, dg2};
  for (int i = 0; i < 2; ++i) {
    const double s = scales[static_cast<std::size_t>(i)];
    value.loss[static_cast<std::size_t>(i)] = s * (c1 * f[i] + c2 * g[i]);
    value.gradient[static_cast<std::size_t>(i)] = {
        s * (c1 * df[i][0] + c2 * dg[i][0]),
        s * (c1 * df[i][1] + f[i] * dc1 + c2 * dg[i][1] + g[i] * dc2)};
  }
  return value;
}

LandscapeSpec readLandscapeSpec(const ConfigNode& node) {
  LandscapeSpec spec;
  std::vector<std::vector<double>> starts;
  for (const Point2& start : spec.starts) starts.push_back({start[0], start[1]});
  starts = node.getDoubleRows("starts", starts, 2, -1e6, 1e6);
  if (starts.empty()) node.fail("starts", "the list is empty: give at least one point [x1, x2]");
  spec.starts.clear();
  for (const auto& start : starts) spec.starts.push_back({start[0], start[1]});
  const std::vector<double> scales = node.getDoubleList("loss_scales", {1.0, 1.0}, 1e-6, 1e6);
  if (scales.size() != 2) {
    node.fail("loss_scales",
              fmt::format("must hold 2 numbers, one per task (has {})", scales.size()));
  }
  spec.lossScales = {scales[0], scales[1]};
  const std::vector<double> offsets =
      node.getDoubleList("loss_offsets", {20.0 * scales[0], 20.0 * scales[1]}, -1e6, 1e6);
  if (offsets.size() != 2) {
    node.fail("loss_offsets",
              fmt::format("must hold 2 numbers, one per task (has {})", offsets.size()));
  }
  spec.lossOffsets = {offsets[0], offsets[1]};
  spec.steps = node.getInt("steps", spec.steps, 1, 100'000'000);
  spec.optimizer = readOptimizerSpec(node.child("optimizer"));
  spec.logEvery = node.getInt("log_every", spec.logEvery, 1, 100'000'000);
  spec.stepsPerEpoch = node.getInt("steps_per_epoch", spec.stepsPerEpoch, 1, 100'000'000);
  spec.seed = static_cast<uint64_t>(node.getInt("seed", 0, 0, INT64_MAX));
  node.finish();
  return spec;
}

std::vector<TaskSpec> landscapeTasks() {
  std::vector<TaskSpec> tasks(2);
  tasks[0].name = "L1";
  tasks[1].name = "L2";
  for (auto& task : tasks) {
    task.kind = TaskKind::kRegression;
    task.outputs = 1;
  }
  return tasks;
}

LandscapeRun runLandscape(Strategy& strategy, const LandscapeSpec& spec, const Point2& start) {
  const std::vector<TaskSpec> tasks = landscapeTasks();
  torch::Tensor x = torch::tensor({start[0], start[1]}, torch::kFloat32).requires_grad_(true);
  StrategyContext context;
  context.tasks = tasks;
  context.sharedParameterCount = 2;
  context.lastSharedLayerParameterCount = 2;
  context.stepsPerEpoch = spec.stepsPerEpoch;
  context.seed = spec.seed;
  strategy.attach(context);
  auto optimizer = makeOptimizer(spec.optimizer, {x}, strategy.parameters());

  LandscapeRun run;
  const auto fail = [&](int64_t step, const std::string& why) {
    run.status = "failed";
    run.error = fmt::format("{} at step {}", why, step);
  };
  Point2 epochLossSums{0.0, 0.0};
  for (int64_t step = 0; step < spec.steps; ++step) {
    const Point2 point = readPoint(x);
    const LandscapeValue value = evaluateLandscape(point, spec.lossScales);
    if (!finite(point) || !finite(value.loss) || !finite(value.gradient[0]) ||
        !finite(value.gradient[1])) {
      fail(step,
           fmt::format("the point ({}, {}) or its losses are not finite", point[0], point[1]));
      break;
    }
    // Each loss as L_i(p) + ∇L_i(p)·(x − p): its value and its gradient in
    // x are the exact ones, so objective strategies back-propagate through it.
    const torch::Tensor gradients = torch::tensor({value.gradient[0][0], value.gradient[0][1],
                                                   value.gradient[1][0], value.gradient[1][1]},
                                                  torch::kFloat32)
                                        .view({2, 2});
    const torch::Tensor anchor = torch::tensor({point[0], point[1]}, torch::kFloat32);
    std::vector<torch::Tensor> losses(2);
    for (int64_t i = 0; i < 2; ++i) {
      const auto t = static_cast<std::size_t>(i);
      losses[t] = value.loss[t] + spec.lossOffsets[t] + torch::dot(gradients[i], x - anchor);
    }
    FixedGradientSource source(gradients);
    optimizer->zero_grad();
    StepOutput update;
    try {
      update = strategy.step(StepInput{losses, source, step, step / spec.stepsPerEpoch});
    } catch (const std::exception& error) {
      fail(step, fmt::format("the strategy failed: {}", error.what()));
      break;
    }
    const Point2 weights = readPair(update.weights);
    if (step % spec.logEvery == 0 || step + 1 == spec.steps) {
      run.steps.push_back(step);
      run.points.push_back(point);
      run.losses.push_back(value.loss);
      run.weights.push_back(weights);
    }
    if (!finite(weights)) {
      fail(step, "a task weight is not finite");
      break;
    }
    // x is the shared parameter and its own feature: a representation
    // gradient lands on it as a parameter gradient does.
    applyUpdate(update, UpdateTargets{{x}, {}, losses, {x}});
    optimizer->step();

    if (strategy.wantsLossesAfterStep()) {
      const Point2 after = evaluateLandscape(readPoint(x), spec.lossScales).loss;
      if (!finite(after)) {
        fail(step, "a loss after the step is not finite");
        break;
      }
      strategy.afterStep({after[0] + spec.lossOffsets[0], after[1] + spec.lossOffsets[1]});
    }
    epochLossSums[0] += value.loss[0] + spec.lossOffsets[0];
    epochLossSums[1] += value.loss[1] + spec.lossOffsets[1];
    if ((step + 1) % spec.stepsPerEpoch == 0) {
      EpochStats stats;
      stats.epoch = step / spec.stepsPerEpoch;
      const auto n = static_cast<double>(spec.stepsPerEpoch);
      stats.meanTrainLosses = {epochLossSums[0] / n, epochLossSums[1] / n};
      strategy.onEpochEnd(stats);
      epochLossSums = {0.0, 0.0};
    }
  }
  return run;
}

}  // namespace fulcrum
