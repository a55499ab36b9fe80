#include "framework/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <utility>

#include <fmt/format.h>
#include <torch/torch.h>

namespace fulcrum {

namespace {

namespace fs = std::filesystem;

/// Version of the layout below; a file without it is not a fulcrum checkpoint.
constexpr int64_t kCheckpointVersion = 1;

/// Flushes the folder `path` (a rename in it) to disk; false with errno set on failure.
bool syncFolder(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  const int error = errno;
  ::close(fd);
  errno = error;
  return ok;
}

torch::Tensor toTensor(const std::vector<double>& values) {
  return torch::tensor(values, torch::kFloat64);
}

/// The default CPU generator (model initialisation, and any strategy that
/// draws from LibTorch's global stream) under its lock.
torch::Tensor generatorState() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void setGeneratorState(const torch::Tensor& state) {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

}  // namespace

std::string checkpointStagingPrefix(const std::string& path) { return path + ".part-"; }

void saveCheckpoint(const std::string& path, const std::string& config, const TrainingPosition& position,
                    const torch::nn::Module& model, const torch::optim::Optimizer& optimizer,
                    const StrategyState& strategy) {
  const std::string staging = fmt::format("{}{}", checkpointStagingPrefix(path), ::getpid());
  int writeError = 0;  // errno of the first failed write, fsync, close or rename
  int fd = -1;
  try {
    torch::serialize::OutputArchive archive;
    archive.write("fulcrum_checkpoint", c10::IValue(kCheckpointVersion));
    archive.write("config", c10::IValue(config));
    archive.write("epochs", c10::IValue(position.epochs));
    archive.write("step", c10::IValue(position.step));
    archive.write("skipped_steps", c10::IValue(position.skippedSteps));
    archive.write("shuffle", c10::IValue(position.shuffle));
    archive.write("last_weights", toTensor(position.lastWeights));
    archive.write("torch_generator", generatorState());

    torch::serialize::OutputArchive modelArchive;
    model.save(modelArchive);
    archive.write("model", modelArchive);
    torch::serialize::OutputArchive optimizerArchive;
    optimizer.save(optimizerArchive);
    archive.write("optimizer", optimizerArchive);
    // Tensors only; an undefined one (state not yet created) is left out and
    // comes back absent, as strategies accept.
    torch::serialize::OutputArchive strategyArchive;
    for (const auto& [key, tensor] : strategy) {
      if (tensor.defined()) strategyArchive.write(key, tensor.detach());
    }
    archive.write("strategy", strategyArchive);
    // Through our own writer: LibTorch's file writer reports a failed write
    // (a full disk) from its destructor, which terminates the process.
    fd = ::open(staging.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) writeError = errno;
    archive.save_to([&](const void* data, std::size_t size) -> std::size_t {
      const char* bytes = static_cast<const char*>(data);
      for (std::size_t done = 0; writeError == 0 && done < size;) {
        const ssize_t n = ::write(fd, bytes + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) writeError = n < 0 ? errno : EIO;
        else done += static_cast<std::size_t>(n);
      }
      return size;  // a failure is reported below, after the archive is complete
    });
    if (fd >= 0) {
      if (writeError == 0 && ::fsync(fd) != 0) writeError = errno;
      if (::close(std::exchange(fd, -1)) != 0 && writeError == 0) writeError = errno;
    }
  } catch (const c10::Error& e) {
    if (fd >= 0) ::close(fd);
    std::remove(staging.c_str());
    throw CheckpointError(fmt::format("cannot write checkpoint '{}': {}", path, e.what_without_backtrace()));
  }
  if (writeError == 0 && ::rename(staging.c_str(), path.c_str()) != 0) writeError = errno;
  if (writeError != 0) {
    std::remove(staging.c_str());
    throw CheckpointError(fmt::format("cannot write checkpoint '{}': {}", path, std::strerror(writeError)));
  }
  const fs::path folder = fs::path(path).parent_path();
  syncFolder(folder.empty() ? "." : folder.string());  // the rename itself
}

LoadedCheckpoint loadCheckpoint(const std::string& path, const std::string& config, torch::nn::Module& model,
                                torch::optim::Optimizer& optimizer) {
  LoadedCheckpoint loaded;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    c10::IValue value;
    if (!archive.try_read("fulcrum_checkpoint", value) || !value.isInt() || value.toInt() != kCheckpointVersion) {
      throw CheckpointError(fmt::format("'{}' is not a fulcrum checkpoint (version {})", path, kCheckpointVersion));
    }
    archive.read("config", value);
    if (value.toStringRef() != config) {
      throw CheckpointError(fmt::format(
          "checkpoint '{}' was written for another configuration of this trial; "
          "remove it (or pass --overwrite) to start the trial over",
          path));
    }
    TrainingPosition& position = loaded.position;
    archive.read("epochs", value);
    position.epochs = value.toInt();
    archive.read("step", value);
    position.step = value.toInt();
    archive.read("skipped_steps", value);
    position.skippedSteps = value.toInt();
    archive.read("shuffle", value);
    position.shuffle = value.toStringRef();
    torch::Tensor tensor;
    archive.read("last_weights", tensor);
    position.lastWeights = toDoubles(tensor);

    torch::serialize::InputArchive modelArchive;
    archive.read("model", modelArchive);
    model.load(modelArchive);
    torch::serialize::InputArchive optimizerArchive;
    archive.read("optimizer", optimizerArchive);
    optimizer.load(optimizerArchive);
    torch::serialize::InputArchive strategyArchive;
    archive.read("strategy", strategyArchive);
    for (const std::string& key : strategyArchive.keys()) {
      torch::Tensor state;
      strategyArchive.read(key, state);
      loaded.strategy[key] = state;
    }
    torch::Tensor generator;
    archive.read("torch_generator", generator);
    setGeneratorState(generator);
  } catch (const c10::Error& e) {
    throw CheckpointError(fmt::format("cannot read checkpoint '{}': {}", path, e.what_without_backtrace()));
  }
  return loaded;
}

}  // namespace fulcrum
