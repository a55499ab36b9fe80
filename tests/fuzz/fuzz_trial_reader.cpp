// libFuzzer target: any bytes as a trial file, read the way fulcrum's
// commands read files they did not write: screenTrialFile() first (a child
// reads it; HDF5 1.10 has memory errors on some damaged files), then, if the
// child survived, TrialReader in this process. The contract checked here:
// a file that is not a readable fulcrum trial file raises FileError naming
// it and nothing else, and the in-process read of a screened file has no
// crash, leak or sanitizer report.
#include <fcntl.h>
#include <pthread.h>
#include <sanitizer/common_interface_defs.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "results/file_screen.h"
#include "results/trial_file.h"

namespace {

/// One scratch file per fuzzing process.
const std::string& scratchPath() {
  static const std::string path = "/tmp/fulcrum-fuzz-trial-" + std::to_string(getpid()) + ".h5";
  return path;
}

/// In a screening child: a sanitizer report there is the finding the screen
/// exists to contain, so it must not end the fuzzing run (libFuzzer's death
/// callback) nor fill the log.
void quietChild() {
  __sanitizer_set_death_callback(nullptr);
  const int null = open("/dev/null", O_WRONLY);
  if (null >= 0) dup2(null, 2);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  pthread_atfork(nullptr, nullptr, quietChild);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string& path = scratchPath();
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return 0;
  const bool written = std::fwrite(data, 1, size, file) == size;
  std::fclose(file);
  if (!written) return 0;
  if (!fulcrum::results::screenTrialFile(path, 10.0).empty()) return 0;
  try {
    const fulcrum::results::TrialReader reader(path);
    (void)reader.text("status");
    (void)reader.integer("schema_version");
    for (const std::string& name : reader.curves()) (void)reader.curve(name);
  } catch (const fulcrum::results::FileError&) {
  }
  return 0;
}
