#include "framework/gradient_diagnostics.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <utility>

namespace fulcrum {

namespace {

using Clock = std::chrono::steady_clock;

/// Adds the time since it was made to `total` (ms) when it goes.
class Timed {
 public:
  explicit Timed(double& total) : total_(total), start_(Clock::now()) {}
  Timed(const Timed&) = delete;
  Timed& operator=(const Timed&) = delete;
  ~Timed() { total_ += std::chrono::duration<double, std::milli>(Clock::now() - start_).count(); }

 private:
  double& total_;
  Clock::time_point start_;
};

/// ‖x‖ over every tensor of `tensors` together, in float64.
double jointNorm(const std::vector<torch::Tensor>& tensors) {
  double squares = 0.0;
  for (const auto& tensor : tensors) {
    if (tensor.defined())
      squares += tensor.detach().to(torch::kFloat64).square().sum().item<double>();
  }
  return std::sqrt(squares);
}

}  // namespace

GradientDiagnostics::GradientDiagnostics(int64_t every, std::vector<torch::Tensor> shared)
    : every_(shared.empty() ? 0 : every), shared_(std::move(shared)) {}

bool GradientDiagnostics::due(int64_t step) const { return every_ > 0 && step % every_ == 0; }

void GradientDiagnostics::beforeUpdate(int64_t step, int64_t epoch, GradientSource& source) {
  milliseconds_ = 0.0;
  Timed timed(milliseconds_);
  record_ = GradientRecord{};
  record_.step = step;
  record_.epoch = epoch;
  // The T × T Gram matrix of the per-task gradients, in float64.
  const torch::Tensor g = source.sharedParameters().detach().to(torch::kFloat64);
  const torch::Tensor gram = g.mm(g.t()).contiguous();
  const int64_t tasks = gram.size(0);
  const double* entries = gram.data_ptr<double>();
  for (int64_t i = 0; i < tasks; ++i) record_.norms.push_back(std::sqrt(entries[i * tasks + i]));
  for (int64_t i = 0; i < tasks; ++i) {
    for (int64_t j = i + 1; j < tasks; ++j) {
      const double scale = record_.norms[i] * record_.norms[j];
      record_.cosines.push_back(scale > 0.0 ? entries[i * tasks + j] / scale : std::nan(""));
    }
  }
}

void GradientDiagnostics::afterBackward() {
  Timed timed(milliseconds_);
  std::vector<torch::Tensor> direction;
  before_.clear();
  for (const auto& parameter : shared_) {
    direction.push_back(parameter.grad());
    before_.push_back(parameter.detach().clone());
  }
  record_.directionNorm = jointNorm(direction);
}

void GradientDiagnostics::afterOptimizerStep() {
  Timed timed(milliseconds_);
  std::vector<torch::Tensor> change;
  for (std::size_t k = 0; k < shared_.size(); ++k)
    change.push_back(shared_[k].detach() - before_[k]);
  record_.stepNorm = jointNorm(change);
}

}  // namespace fulcrum
