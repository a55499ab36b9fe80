#include "framework/checkpoint.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>
#include <torch/torch.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <utility>

#include "framework/regular_file.h"

namespace fulcrum {

namespace {

namespace fs = std::filesystem;

/// Version of the layout below; a file without it is not a fulcrum checkpoint.
/// 2: the checksum trailer and the thread count.
constexpr int64_t kCheckpointVersion = 3;

/// The trailer after the archive: kTrailerMagic, the archive's length in
/// bytes (uint64, little-endian) and its CRC-32 (zlib's crc32, uint32,
/// little-endian). LibTorch 1.13 reads a zip archive without checking the
/// CRCs it stores, so a flipped bit in a tensor would load silently.
constexpr std::array<char, 8> kTrailerMagic = {'F', 'U', 'L', 'C', 'R', 'C', '3', '2'};
constexpr std::size_t kTrailerSize = kTrailerMagic.size() + 8 + 4;

/// `value`'s low `bytes` bytes, least significant first, appended to `out`.
void appendLittleEndian(std::string& out, uint64_t value, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
}

uint64_t readLittleEndian(const char* data, std::size_t bytes) {
  uint64_t value = 0;
  for (std::size_t i = bytes; i-- > 0;) value = (value << 8) | static_cast<unsigned char>(data[i]);
  return value;
}

uint32_t crc32Of(uint32_t crc, const char* data, std::size_t size) {
  // zlib's crc32 takes at most UINT_MAX bytes at a time.
  while (size > 0) {
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(size, 1u << 30));
    crc = static_cast<uint32_t>(::crc32(crc, reinterpret_cast<const Bytef*>(data), chunk));
    data += chunk;
    size -= chunk;
  }
  return crc;
}

/// The archive in the `what` ("checkpoint", "model file") at `path`, its
/// checksum verified; `startOver` says what to do with a damaged one. Opened
/// without blocking (a FIFO or device would wait forever, deaf to SIGTERM),
/// and only a regular file is read.
std::string readVerifiedArchive(const std::string& path, const std::string& what,
                                const std::string& startOver) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    throw CheckpointError(fmt::format("cannot read {} '{}': {}", what, path, std::strerror(errno)));
  std::string bytes;
  struct stat info {};
  int error = 0;
  if (const std::string kind = nonRegularKind(fd); !kind.empty()) {
    ::close(fd);
    throw CheckpointError(
        fmt::format("cannot read {} '{}': it is {}, not a regular file", what, path, kind));
  }
  if (::fstat(fd, &info) != 0) {
    error = errno;
  } else {
    bytes.resize(static_cast<std::size_t>(info.st_size));
    std::size_t done = 0;
    while (error == 0) {
      if (done == bytes.size())
        bytes.resize(std::max<std::size_t>(2 * done, 4096));  // it grew meanwhile
      const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) error = errno;
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    bytes.resize(done);
  }
  ::close(fd);
  if (error != 0)
    throw CheckpointError(fmt::format("cannot read {} '{}': {}", what, path, std::strerror(error)));
  if (bytes.size() < kTrailerSize ||
      bytes.compare(bytes.size() - kTrailerSize, kTrailerMagic.size(), kTrailerMagic.data(),
                    kTrailerMagic.size()) != 0) {
    throw CheckpointError(
        fmt::format("cannot read {} '{}': it does not end in fulcrum's checksum trailer "
                    "(truncated, or written by a "
                    "fulcrum without checkpoint checksums); {}",
                    what, path, startOver));
  }
  const char* trailer = bytes.data() + bytes.size() - kTrailerSize + kTrailerMagic.size();
  const uint64_t length = readLittleEndian(trailer, 8);
  const auto stored = static_cast<uint32_t>(readLittleEndian(trailer + 8, 4));
  if (length != bytes.size() - kTrailerSize) {
    throw CheckpointError(
        fmt::format("cannot read {} '{}': damaged: its trailer gives {} bytes of archive, the file "
                    "holds {}; {}",
                    what, path, length, bytes.size() - kTrailerSize, startOver));
  }
  bytes.resize(length);
  const uint32_t actual = crc32Of(0, bytes.data(), bytes.size());
  if (actual != stored) {
    throw CheckpointError(
        fmt::format("cannot read {} '{}': damaged: CRC-32 {:08x} recorded, {:08x} read; {}", what,
                    path, stored, actual, startOver));
  }
  return bytes;
}

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

namespace {

/// Writes `archive` and its checksum trailer to "<path>.part-<pid>", syncs
/// it and renames it over `path` (a regular file or nothing; anything else
/// there is refused). Throws CheckpointError naming the `what` and the path.
void writeVerifiedArchive(const std::string& path, const std::string& what,
                          torch::serialize::OutputArchive& archive) {
  const std::string staging = fmt::format("{}{}", checkpointStagingPrefix(path), ::getpid());
  int writeError = 0;  // errno of the first failed write, fsync, close or rename
  int fd = -1;
  try {
    // Through our own writer: LibTorch's file writer reports a failed write
    // (a full disk) from its destructor, which terminates the process.
    // A new file (a leftover of a killed writer with our pid is removed
    // first), never through a symbolic link, never blocking on a FIFO.
    std::remove(staging.c_str());
    fd = ::open(staging.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                0644);
    if (fd < 0) writeError = errno;
    auto writeAll = [&](const char* bytes, std::size_t size) {
      for (std::size_t done = 0; writeError == 0 && done < size;) {
        const ssize_t n = ::write(fd, bytes + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
          writeError = n < 0 ? errno : EIO;
        else
          done += static_cast<std::size_t>(n);
      }
    };
    uint32_t crc = crc32Of(0, nullptr, 0);
    uint64_t length = 0;
    archive.save_to([&](const void* data, std::size_t size) -> std::size_t {
      crc = crc32Of(crc, static_cast<const char*>(data), size);
      length += size;
      writeAll(static_cast<const char*>(data), size);
      return size;  // a failure is reported below, after the archive is complete
    });
    std::string trailer(kTrailerMagic.data(), kTrailerMagic.size());
    appendLittleEndian(trailer, length, 8);
    appendLittleEndian(trailer, crc, 4);
    writeAll(trailer.data(), trailer.size());
    if (fd >= 0) {
      if (writeError == 0 && ::fsync(fd) != 0) writeError = errno;
      if (::close(std::exchange(fd, -1)) != 0 && writeError == 0) writeError = errno;
    }
  } catch (const c10::Error& e) {
    if (fd >= 0) ::close(fd);
    std::remove(staging.c_str());
    throw CheckpointError(
        fmt::format("cannot write {} '{}': {}", what, path, e.what_without_backtrace()));
  }
  // Only a regular file (or nothing) is replaced; a FIFO, device, folder
  // or symbolic link standing at `path` stays as it is.
  const std::string refused = nonRegularKind(path, /*followLinks=*/false);
  if (writeError == 0 && refused.empty() && ::rename(staging.c_str(), path.c_str()) != 0)
    writeError = errno;
  if (writeError != 0 || !refused.empty()) {
    std::remove(staging.c_str());
    if (!refused.empty()) {
      throw CheckpointError(
          fmt::format("cannot write {} '{}': it is {}, not a regular file", what, path, refused));
    }
    throw CheckpointError(
        fmt::format("cannot write {} '{}': {}", what, path, std::strerror(writeError)));
  }
  const fs::path folder = fs::path(path).parent_path();
  syncFolder(folder.empty() ? "." : folder.string());  // the rename itself
}

/// Version of a saved model's layout; a file without it is not one.
constexpr int64_t kModelFileVersion = 1;

}  // namespace

void saveCheckpoint(const std::string& path, const std::string& config,
                    const TrainingPosition& position, const torch::nn::Module& model,
                    const torch::optim::Optimizer& optimizer, const StrategyState& strategy) {
  torch::serialize::OutputArchive archive;
  try {
    archive.write("fulcrum_checkpoint", c10::IValue(kCheckpointVersion));
    archive.write("config", c10::IValue(config));
    archive.write("epochs", c10::IValue(position.epochs));
    archive.write("step", c10::IValue(position.step));
    archive.write("skipped_steps", c10::IValue(position.skippedSteps));
    archive.write("threads", c10::IValue(position.threads));
    archive.write("shuffle", c10::IValue(position.shuffle));
    archive.write("last_weights", toTensor(position.lastWeights));
    const PlateauState& plateau = position.plateau;
    archive.write("plateau", toTensor({plateau.best, static_cast<double>(plateau.badEpochs),
                                       static_cast<double>(plateau.cooldownLeft), plateau.lr}));
    const EarlyStoppingState& stopping = position.stopping;
    archive.write("saved_best", toTensor({position.savedBest}));
    archive.write("early_stopping",
                  toTensor({stopping.best, static_cast<double>(stopping.bestEpoch),
                            static_cast<double>(stopping.badEpochs)}));
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
  } catch (const c10::Error& e) {
    throw CheckpointError(
        fmt::format("cannot write checkpoint '{}': {}", path, e.what_without_backtrace()));
  }
  writeVerifiedArchive(path, "checkpoint", archive);
}

LoadedCheckpoint loadCheckpoint(const std::string& path, const std::string& config,
                                torch::nn::Module& model, torch::optim::Optimizer& optimizer) {
  LoadedCheckpoint loaded;
  try {
    const std::string bytes =
        readVerifiedArchive(path, "checkpoint", "remove it to start the trial over");
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size());
    c10::IValue value;
    if (!archive.try_read("fulcrum_checkpoint", value) || !value.isInt() ||
        value.toInt() != kCheckpointVersion) {
      throw CheckpointError(
          fmt::format("'{}' is not a fulcrum checkpoint (version {})", path, kCheckpointVersion));
    }
    archive.read("config", value);
    if (value.toStringRef() != config) {
      throw CheckpointError(
          fmt::format("checkpoint '{}' was written for another configuration of this trial; "
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
    archive.read("threads", value);
    position.threads = value.toInt();
    archive.read("shuffle", value);
    position.shuffle = value.toStringRef();
    torch::Tensor tensor;
    archive.read("last_weights", tensor);
    position.lastWeights = toDoubles(tensor);
    archive.read("plateau", tensor);
    const std::vector<double> plateau = toDoubles(tensor);
    archive.read("early_stopping", tensor);
    const std::vector<double> stopping = toDoubles(tensor);
    archive.read("saved_best", tensor);
    position.savedBest = tensor.numel() == 1 ? tensor.item<double>() : std::nan("");
    if (plateau.size() != 4 || stopping.size() != 3)
      throw CheckpointError(fmt::format("checkpoint '{}': damaged schedule state", path));
    position.plateau = {plateau[0], static_cast<int64_t>(plateau[1]),
                        static_cast<int64_t>(plateau[2]), plateau[3]};
    position.stopping = {stopping[0], static_cast<int64_t>(stopping[1]),
                         static_cast<int64_t>(stopping[2])};

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
    throw CheckpointError(
        fmt::format("cannot read checkpoint '{}': {}", path, e.what_without_backtrace()));
  }
  return loaded;
}

void saveModel(const std::string& path, const SavedModel& about, const torch::nn::Module& model) {
  torch::serialize::OutputArchive archive;
  try {
    archive.write("fulcrum_model", c10::IValue(kModelFileVersion));
    archive.write("config", c10::IValue(about.config));
    archive.write("which", c10::IValue(about.which));
    archive.write("epoch", c10::IValue(about.epoch));
    archive.write("criterion", c10::IValue(about.criterion));
    archive.write("value", c10::IValue(about.value));
    // Flat, by full name, so that loading checks every name and shape
    // (Module::load would take a tensor of another shape silently).
    std::string names;
    int64_t index = 0;
    for (const auto& list : {model.named_parameters(), model.named_buffers()}) {
      for (const auto& item : list) {
        names += (names.empty() ? "" : "\n") + item.key();
        archive.write(fmt::format("t{}", index++), item.value().detach());
      }
    }
    archive.write("names", c10::IValue(names));
  } catch (const c10::Error& e) {
    throw CheckpointError(
        fmt::format("cannot write model file '{}': {}", path, e.what_without_backtrace()));
  }
  writeVerifiedArchive(path, "model file", archive);
}

SavedModel loadModel(const std::string& path, torch::nn::Module& model) {
  SavedModel about;
  const std::string bytes =
      readVerifiedArchive(path, "model file", "train the trial again with train.save_model");
  auto unreadable = [&path](const c10::Error& e) {
    return CheckpointError(
        fmt::format("cannot read model file '{}': {}", path, e.what_without_backtrace()));
  };
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(bytes.data(), bytes.size());
  } catch (const c10::Error& e) {
    throw unreadable(e);
  }
  c10::IValue value;
  if (!archive.try_read("fulcrum_model", value) || !value.isInt() ||
      value.toInt() != kModelFileVersion) {
    throw CheckpointError(
        fmt::format("'{}' is not a fulcrum model file (train.save_model, version {})", path,
                    kModelFileVersion));
  }
  std::map<std::string, int64_t> stored;  // name → index of its tensor
  try {
    archive.read("config", value);
    about.config = value.toStringRef();
    archive.read("which", value);
    about.which = value.toStringRef();
    archive.read("epoch", value);
    about.epoch = value.toInt();
    archive.read("criterion", value);
    about.criterion = value.toStringRef();
    archive.read("value", value);
    about.value = value.toDouble();
    archive.read("names", value);
    std::stringstream names(value.toStringRef());
    std::string name;
    while (std::getline(names, name)) stored.emplace(name, static_cast<int64_t>(stored.size()));
  } catch (const c10::Error& e) {
    throw unreadable(e);
  }
  const std::string misfit = fmt::format(
      "model file '{}' does not fit the model of this experiment (another architecture, widths "
      "or tasks?)",
      path);
  std::set<std::string> used;
  torch::NoGradGuard noGrad;
  for (const auto& list : {model.named_parameters(), model.named_buffers()}) {
    for (const auto& item : list) {
      const auto found = stored.find(item.key());
      if (found == stored.end())
        throw CheckpointError(fmt::format("{}: it has no '{}'", misfit, item.key()));
      torch::Tensor tensor;
      try {
        archive.read(fmt::format("t{}", found->second), tensor);
      } catch (const c10::Error& e) {
        throw unreadable(e);
      }
      if (tensor.sizes() != item.value().sizes() || tensor.dtype() != item.value().dtype()) {
        auto describe = [](const torch::Tensor& t) {
          return fmt::format("[{}] {}", fmt::join(t.sizes(), ", "), std::string(t.dtype().name()));
        };
        throw CheckpointError(fmt::format("{}: '{}' is {} there, {} here", misfit, item.key(),
                                          describe(tensor), describe(item.value())));
      }
      item.value().copy_(tensor);
      used.insert(item.key());
    }
  }
  if (used.size() != stored.size()) {
    std::vector<std::string> extra;
    for (const auto& [name, index] : stored)
      if (used.count(name) == 0) extra.push_back(name);
    throw CheckpointError(
        fmt::format("{}: this model has no '{}'", misfit, fmt::join(extra, "', '")));
  }
  return about;
}

}  // namespace fulcrum
