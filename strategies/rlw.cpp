#include "strategies/rlw.h"

#include <cmath>
#include <stdexcept>

#include <torch/torch.h>

#include "strategies/support.h"

namespace fulcrum {

namespace {
// A fixed offset keeps RLW's stream apart from other users of the trial seed.
constexpr uint64_t kStream = 0x524C57'00000001ULL;
}  // namespace

RlwOptions readRlwOptions(const ConfigNode& options, const std::vector<TaskSpec>& tasks) {
  (void)tasks;
  RlwOptions out;
  out.sumToTasks = options.getString("scale", "one", {"one", "tasks"}) == "tasks";
  return out;
}

RandomLossWeighting::RandomLossWeighting(RlwOptions options, std::vector<TaskSpec> tasks)
    : options_(options), tasks_(std::move(tasks)) {}

void RandomLossWeighting::attach(const StrategyContext& context) {
  detail::checkSameTasks(tasks_, context.tasks, "rlw");
  seed_ = context.seed;
  engine_.seed(seed_ ^ kStream);
  drawn_ = 0;
}

double RandomLossWeighting::uniform() {
  ++drawn_;
  // 53 random bits → a double in (0, 1]; never 0, so the log below is finite.
  return (static_cast<double>(engine_() >> 11) + 1.0) * 0x1.0p-53;
}

double RandomLossWeighting::normal() {
  const double u1 = uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

StepOutput RandomLossWeighting::step(const StepInput& input) {
  const torch::Tensor losses = detail::stackLosses(input.losses, tasks_.size(), "rlw");
  std::vector<double> logits(tasks_.size());
  for (double& xi : logits) xi = normal();
  double largest = logits.front();
  for (double xi : logits) largest = std::max(largest, xi);
  std::vector<double> weights(tasks_.size());
  double sum = 0.0;
  for (std::size_t i = 0; i < logits.size(); ++i) sum += weights[i] = std::exp(logits[i] - largest);
  const double scale = options_.sumToTasks ? static_cast<double>(tasks_.size()) : 1.0;
  for (double& w : weights) w *= scale / sum;
  StepOutput out;
  out.kind = StepOutput::Kind::kObjective;
  out.objective = detail::weightedSum(losses, weights);
  out.weights = detail::reportedWeights(weights, losses);
  return out;
}

StrategyState RandomLossWeighting::state() const {
  return {{"seed", torch::tensor(static_cast<int64_t>(seed_))}, {"uniforms_drawn", torch::tensor(drawn_)}};
}

void RandomLossWeighting::loadState(const StrategyState& state) {
  const int64_t seed = detail::requireState(state, "seed", 0, "rlw").item<int64_t>();
  const int64_t drawn = detail::requireState(state, "uniforms_drawn", 0, "rlw").item<int64_t>();
  if (drawn < 0) throw std::invalid_argument("rlw: state 'uniforms_drawn' is negative");
  seed_ = static_cast<uint64_t>(seed);
  engine_.seed(seed_ ^ kStream);
  engine_.discard(static_cast<unsigned long long>(drawn));
  drawn_ = drawn;
}

}  // namespace fulcrum
