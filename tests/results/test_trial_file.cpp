// Tests of the HDF5 trial file: round trips, final status, crash safety of
// the SWMR writer (a forked child killed with SIGKILL), damaged files and
// interop with h5py.

#include "results/trial_file.h"

#include <catch2/catch.hpp>
#include <hdf5.h>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using fulcrum::results::Attributes;
using fulcrum::results::FileError;
using fulcrum::results::kSchemaVersion;
using fulcrum::results::TrialReader;
using fulcrum::results::TrialWriter;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

/// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "fulcrum_results_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code error;
    fs::remove_all(path_, error);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

/// n distinct, non-round values starting from `seed`.
std::vector<double> series(std::size_t n, double seed) {
  std::vector<double> values(n);
  for (std::size_t i = 0; i < n; ++i) values[i] = seed + 0.1 * static_cast<double>(i) - 1.0 / (3.0 + i);
  return values;
}

std::vector<double> concat(std::vector<double> a, const std::vector<double>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void appendAll(TrialWriter& writer, std::size_t index, const std::vector<double>& values) {
  for (double value : values) writer.append(index, value);
}

const std::vector<std::string> kCrashCurves = {"steps/loss/a", "steps/loss/b", "epochs/test/a/accuracy"};

/// The values the crash test's child writes to curve `curve` in flush `k`.
std::vector<double> crashChunk(std::size_t curve, int k) { return series(100, 1000.0 * curve + 100.0 * k); }

/// A forked child that writes `path`: `flushes` flushes of 100 values per
/// curve, then 50 more values per curve that are never flushed. It then
/// blocks until killed. The destructor kills and reaps it, so a failed
/// REQUIRE never leaves it running.
class CrashingWriter {
 public:
  CrashingWriter(const std::string& path, int flushes) {
    int ends[2];
    if (pipe(ends) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ == 0) {
      close(ends[0]);
      runChild(path, flushes, ends[1]);
    }
    close(ends[1]);
    char byte = 0;
    ready_ = pid_ > 0 && read(ends[0], &byte, 1) == 1;
    close(ends[0]);
  }
  ~CrashingWriter() { killAndWait(); }
  CrashingWriter(const CrashingWriter&) = delete;
  CrashingWriter& operator=(const CrashingWriter&) = delete;

  /// True once the child has written and flushed all it will.
  bool ready() const { return ready_; }
  /// Kills the child with SIGKILL; returns its wait status.
  int killAndWait() {
    int status = -1;
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    return status;
  }

 private:
  // No Catch2 in the child, and no normal exit: atexit handlers would close
  // the HDF5 file and so clear its "open for writing" mark.
  [[noreturn]] static void runChild(const std::string& path, int flushes, int ready) {
    try {
      Attributes attributes;
      attributes.text["strategy"] = "gradnorm";
      attributes.integers["seed"] = 7;
      TrialWriter writer(path, attributes, kCrashCurves);
      for (int k = 0; k < flushes; ++k) {
        for (std::size_t c = 0; c < kCrashCurves.size(); ++c) appendAll(writer, c, crashChunk(c, k));
        writer.flush();
      }
      for (std::size_t c = 0; c < kCrashCurves.size(); ++c) appendAll(writer, c, series(50, -5.0));
      const char byte = 'r';
      if (write(ready, &byte, 1) != 1) _exit(3);
      for (;;) pause();
    } catch (...) {
      _exit(2);
    }
  }

  pid_t pid_ = -1;
  bool ready_ = false;
};

void requireCrashContents(const TrialReader& reader, int flushes) {
  CHECK(reader.text("status") == "running");
  CHECK(reader.text("end_time") == "");
  CHECK(reader.text("strategy") == "gradnorm");
  CHECK(reader.integer("seed") == 7);
  CHECK(reader.integer("schema_version") == kSchemaVersion);
  std::vector<std::string> sorted = kCrashCurves;
  std::sort(sorted.begin(), sorted.end());
  REQUIRE(reader.curves() == sorted);
  for (std::size_t c = 0; c < kCrashCurves.size(); ++c) {
    std::vector<double> expected;
    for (int k = 0; k < flushes; ++k) expected = concat(expected, crashChunk(c, k));
    INFO("curve " << kCrashCurves[c]);
    CHECK(reader.curve(kCrashCurves[c]) == expected);
  }
}

/// Output of a shell command, or what the failure was.
std::string run(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "popen failed";
  std::string output;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
  const int status = pclose(pipe);
  if (status != 0) output += "\n(exit status " + std::to_string(status) + ")";
  return output;
}

/// Whether HDF5 opens `path` read-only without SWMR (quietly).
bool plainOpenWorks(const std::string& path) {
  H5E_auto2_t function = nullptr;
  void* data = nullptr;
  H5Eget_auto2(H5E_DEFAULT, &function, &data);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file >= 0) H5Fclose(file);
  H5Eset_auto2(H5E_DEFAULT, function, data);
  return file >= 0;
}

/// Creates an HDF5 file that is not a trial file; with `schemaVersion` >= 0
/// it carries that schema_version attribute.
void writeForeignHdf5(const std::string& path, int64_t schemaVersion) {
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(file >= 0);
  if (schemaVersion >= 0) {
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t attribute = H5Acreate2(file, "schema_version", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(attribute >= 0);
    REQUIRE(H5Awrite(attribute, H5T_NATIVE_INT64, &schemaVersion) >= 0);
    H5Aclose(attribute);
    H5Sclose(space);
  }
  REQUIRE(H5Fclose(file) >= 0);
}

}  // namespace

TEST_CASE("a finished trial file reads back exactly", "[results]") {
  TempDir dir;
  const std::string path = dir.file("trial.h5");
  Attributes attributes;
  attributes.text["strategy"] = "gradnorm";
  attributes.text["config"] = "model:\n  trunk: [64, 64]\nnote: caf\xc3\xa9 \xe2\x9c\x93\n";
  attributes.text["empty"] = "";
  attributes.integers["seed"] = -42;
  attributes.integers["big"] = std::numeric_limits<int64_t>::max();
  const std::vector<std::string> declared = {"steps/loss/top_left", "steps/loss/top_right",
                                             "epochs/test/top_left/accuracy", "steps/never", "flat"};

  const std::vector<double> a1 = series(1500, 0.5), a2 = series(700, -3.0), a3 = series(1, 9.0);
  const std::vector<double> b1 = series(3, 2.0), b3 = {std::numeric_limits<double>::infinity(), -0.0, 1e-300};
  const std::vector<double> c2 = series(2048, 7.0);
  const std::vector<double> flat = series(10, 1.0);
  {
    TrialWriter writer(path, attributes, declared);
    CHECK(writer.path() == path);
    const std::size_t a = writer.curve("steps/loss/top_left");
    const std::size_t b = writer.curve("steps/loss/top_right");
    const std::size_t c = writer.curve("epochs/test/top_left/accuracy");
    CHECK(a == 0);
    CHECK(c == 2);
    appendAll(writer, a, a1);
    appendAll(writer, b, b1);
    writer.flush();
    appendAll(writer, a, a2);
    appendAll(writer, c, c2);
    writer.flush();
    writer.flush();  // nothing pending
    appendAll(writer, a, a3);
    appendAll(writer, b, b3);
    appendAll(writer, writer.curve("flat"), flat);
    writer.flush();
    writer.finish("completed", "");
  }

  const TrialReader reader(path);
  CHECK(reader.path() == path);
  CHECK(reader.curves() == std::vector<std::string>{"epochs/test/top_left/accuracy", "flat", "steps/loss/top_left",
                                                    "steps/loss/top_right", "steps/never"});
  CHECK(reader.curve("steps/loss/top_left") == concat(concat(a1, a2), a3));
  CHECK(reader.curve("steps/loss/top_right") == concat(b1, b3));
  CHECK(std::signbit(reader.curve("steps/loss/top_right")[4]));
  CHECK(reader.curve("epochs/test/top_left/accuracy") == c2);
  CHECK(reader.curve("flat") == flat);
  CHECK(reader.curve("steps/never").empty());
  CHECK(reader.hasCurve("steps/never"));
  CHECK_FALSE(reader.hasCurve("steps/loss"));  // a group, not a curve
  CHECK_FALSE(reader.hasCurve("missing"));
  REQUIRE_THROWS_WITH(reader.curve("steps/loss"), StartsWith(path) && Contains("steps/loss"));

  CHECK(reader.text("status") == "completed");
  CHECK(reader.text("error") == "");
  CHECK(reader.integer("schema_version") == kSchemaVersion);
  const std::string endTime = reader.text("end_time");
  REQUIRE(endTime.size() == 20);  // 2024-01-02T03:04:05Z
  CHECK(endTime[4] == '-');
  CHECK(endTime[10] == 'T');
  CHECK(endTime.back() == 'Z');
  CHECK(reader.text("strategy") == "gradnorm");
  CHECK(reader.text("config") == attributes.text["config"]);
  CHECK(reader.text("empty", "absent") == "");
  CHECK(reader.text("missing", "absent") == "absent");
  CHECK(reader.integer("seed") == -42);
  CHECK(reader.integer("big") == std::numeric_limits<int64_t>::max());
  CHECK(reader.integer("missing", 5) == 5);
  // Nothing else: four attributes of the file's own plus the caller's.
  CHECK(reader.attributes().text.size() == 3 + attributes.text.size());
  CHECK(reader.attributes().integers.size() == 1 + attributes.integers.size());
}

TEST_CASE("a failed trial records its status, error and extra attributes", "[results]") {
  TempDir dir;
  const std::string path = dir.file("failed.h5");
  Attributes attributes;
  attributes.text["host"] = "node1";
  {
    TrialWriter writer(path, attributes, {"steps/loss/a"});
    appendAll(writer, 0, {1.0, 2.0, 3.0});
    writer.flush();
    Attributes extra;
    extra.text["host"] = "node2";  // replaces the constructor's value
    extra.integers["steps_done"] = 3;
    writer.finish("failed", "loss of task a is NaN at step 3", extra);
  }
  const TrialReader reader(path);
  CHECK(reader.text("status") == "failed");
  CHECK(reader.text("error") == "loss of task a is NaN at step 3");
  CHECK_FALSE(reader.text("end_time").empty());
  CHECK(reader.text("host") == "node2");
  CHECK(reader.integer("steps_done", -1) == 3);
  CHECK(reader.curve("steps/loss/a") == std::vector<double>{1.0, 2.0, 3.0});
}

TEST_CASE("finish writes values that were never flushed", "[results]") {
  TempDir dir;
  const std::string path = dir.file("unflushed.h5");
  const std::vector<double> first = series(10, 0.0), second = series(5, 1.0);
  {
    TrialWriter writer(path, {}, {"x", "y/z"});
    appendAll(writer, 0, first);
    writer.flush();
    appendAll(writer, 0, second);
    appendAll(writer, 1, second);
    writer.finish("completed", "");
  }
  const TrialReader reader(path);
  CHECK(reader.curve("x") == concat(first, second));
  CHECK(reader.curve("y/z") == second);
  CHECK(reader.text("status") == "completed");
}

TEST_CASE("a writer destroyed without finish leaves a running trial", "[results]") {
  TempDir dir;
  const std::string path = dir.file("abandoned.h5");
  {
    TrialWriter writer(path, {}, {"x"});
    appendAll(writer, 0, {1.0, 2.0});
    writer.flush();
    writer.append(0, 3.0);
  }
  CHECK(plainOpenWorks(path));  // closed properly, unlike a killed writer's file
  const TrialReader reader(path);
  CHECK(reader.text("status") == "running");
  CHECK(reader.text("end_time") == "");
  CHECK(reader.curve("x") == std::vector<double>{1.0, 2.0, 3.0});
}

TEST_CASE("a killed writer leaves a readable file with every flushed value", "[results][crash]") {
  for (const int flushes : {0, 1, 3}) {
    INFO("flushes before the kill: " << flushes);
    TempDir dir;
    const std::string path = dir.file("killed.h5");
    CrashingWriter child(path, flushes);
    REQUIRE(child.ready());

    // While the writer is alive, in SWMR mode.
    const std::string beforeRead = readBytes(path);
    {
      const TrialReader live(path);
      requireCrashContents(live, flushes);
    }
    CHECK(readBytes(path) == beforeRead);

    const int status = child.killAndWait();
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(WTERMSIG(status) == SIGKILL);

    const std::string beforeSecondRead = readBytes(path);
    {
      const TrialReader dead(path);
      requireCrashContents(dead, flushes);
    }
    // Reading must not repair or otherwise touch the file.
    CHECK(readBytes(path) == beforeSecondRead);
    // Still marked as open for writing, so a plain HDF5 open refuses it: the
    // reader really did have to open it as an SWMR reader.
    CHECK_FALSE(plainOpenWorks(path));
  }
}

TEST_CASE("damaged or foreign files are refused with the path in the message", "[results]") {
  TempDir dir;
  const std::string good = dir.file("good.h5");
  {
    TrialWriter writer(good, {}, {"steps/loss/a", "steps/loss/b"});
    appendAll(writer, 0, series(3000, 1.0));
    appendAll(writer, 1, series(10, 2.0));
    writer.finish("completed", "");
  }
  const std::string bytes = readBytes(good);

  const std::string missing = dir.file("missing.h5");
  REQUIRE_THROWS_WITH(TrialReader(missing), StartsWith(missing + ": ") && Contains("no such file"));

  const std::string text = dir.file("notes.txt");
  writeBytes(text, "this is not an HDF5 file\n");
  REQUIRE_THROWS_WITH(TrialReader(text), StartsWith(text + ": ") && Contains("not an HDF5 file"));

  const std::string empty = dir.file("empty.h5");
  writeBytes(empty, "");
  REQUIRE_THROWS_WITH(TrialReader(empty), StartsWith(empty + ": ") && Contains("empty"));

  const std::string half = dir.file("half.h5");
  writeBytes(half, bytes.substr(0, bytes.size() / 2));
  REQUIRE_THROWS_WITH(TrialReader(half), StartsWith(half + ": ") && Contains("truncated"));

  REQUIRE_THROWS_WITH(TrialReader(dir.file("")), StartsWith(dir.file("")) && Contains("not a regular file"));

  const std::string foreign = dir.file("foreign.h5");
  writeForeignHdf5(foreign, -1);
  REQUIRE_THROWS_WITH(TrialReader(foreign), StartsWith(foreign + ": not a fulcrum trial file"));

  const std::string future = dir.file("future.h5");
  writeForeignHdf5(future, kSchemaVersion + 1);
  REQUIRE_THROWS_WITH(TrialReader(future), StartsWith(future + ": ") && Contains("schema_version 2 is not supported"));
}

TEST_CASE("no truncated copy of a trial file reads as different data", "[results][crash]") {
  // Every prefix of a finished file and of a killed writer's file must
  // either be refused or read back exactly: never zeros or cut curves.
  TempDir dir;
  const std::string finished = dir.file("finished.h5");
  {
    TrialWriter writer(finished, {}, kCrashCurves);
    for (int k = 0; k < 3; ++k) {
      for (std::size_t c = 0; c < kCrashCurves.size(); ++c) appendAll(writer, c, crashChunk(c, k));
      writer.flush();
    }
    writer.finish("completed", "");
  }
  const std::string killed = dir.file("killed.h5");
  {
    CrashingWriter child(killed, 3);
    REQUIRE(child.ready());
  }

  for (const std::string& source : {finished, killed}) {
    const std::string bytes = readBytes(source);
    const std::string copy = dir.file("prefix.h5");
    int refused = 0;
    for (std::size_t size = 0; size < bytes.size(); size += 97) {
      INFO(source << " cut to " << size << " of " << bytes.size() << " bytes");
      writeBytes(copy, bytes.substr(0, size));
      try {
        const TrialReader reader(copy);
        for (std::size_t c = 0; c < kCrashCurves.size(); ++c) {
          std::vector<double> expected;
          for (int k = 0; k < 3; ++k) expected = concat(expected, crashChunk(c, k));
          CHECK(reader.curve(kCrashCurves[c]) == expected);
        }
      } catch (const FileError& error) {
        CHECK_THAT(error.what(), StartsWith(copy + ": "));
        ++refused;
      }
    }
    CHECK(refused > 0);
  }
}

TEST_CASE("the writer refuses bad paths, names and calls", "[results]") {
  TempDir dir;
  const std::string path = dir.file("trial.h5");

  SECTION("an existing file needs overwrite, which replaces it") {
    {
      TrialWriter writer(path, {}, {"old"});
      writer.append(0, 1.0);
      writer.finish("completed", "");
    }
    REQUIRE_THROWS_WITH(TrialWriter(path, {}, {"new"}), StartsWith(path + ": ") && Contains("already exists"));
    CHECK(TrialReader(path).hasCurve("old"));  // untouched by the refusal
    {
      TrialWriter writer(path, {}, {"new"}, true);
      writer.append(0, 2.0);
      writer.finish("completed", "");
    }
    const TrialReader reader(path);
    CHECK(reader.curves() == std::vector<std::string>{"new"});
    CHECK(reader.curve("new") == std::vector<double>{2.0});
  }

  SECTION("a missing directory") {
    const std::string nowhere = dir.file("no/such/dir/trial.h5");
    REQUIRE_THROWS_WITH(TrialWriter(nowhere, {}, {"x"}), StartsWith(nowhere + ": ") && Contains("does not exist"));
  }

  SECTION("bad curve names, leaving no file behind") {
    REQUIRE_THROWS_WITH(TrialWriter(path, {}, {"a", ""}), StartsWith(path + ": ") && Contains("empty curve name"));
    REQUIRE_THROWS_WITH(TrialWriter(path, {}, {"a", "b", "a"}), StartsWith(path + ": ") && Contains("'a'"));
    REQUIRE_THROWS_WITH(TrialWriter(path, {}, {"/a"}), StartsWith(path + ": ") && Contains("starts with '/'"));
    REQUIRE_THROWS_WITH(TrialWriter(path, {}, {"a//b"}), StartsWith(path + ": ") && Contains("'a//b'"));
    REQUIRE_THROWS_WITH(TrialWriter(path, {}, {"a/"}), StartsWith(path + ": ") && Contains("'a/'"));
    REQUIRE_THROWS_WITH(TrialWriter(path, {}, {"a/b", "a"}),
                        StartsWith(path + ": ") && Contains("'a'") && Contains("'a/b'"));
    CHECK_FALSE(fs::exists(path));
  }

  SECTION("reserved or clashing attributes") {
    Attributes reserved;
    reserved.text["status"] = "completed";
    REQUIRE_THROWS_WITH(TrialWriter(path, reserved, {"x"}), StartsWith(path + ": ") && Contains("'status'"));
    Attributes clash;
    clash.text["seed"] = "1";
    clash.integers["seed"] = 1;
    REQUIRE_THROWS_WITH(TrialWriter(path, clash, {"x"}), StartsWith(path + ": ") && Contains("'seed'"));
    CHECK_FALSE(fs::exists(path));
  }

  SECTION("undeclared curves, bad indices, bad status and calls after finish") {
    TrialWriter writer(path, {}, {"steps/loss/a", "steps/loss/b"});
    REQUIRE_THROWS_WITH(writer.curve("steps/loss/c"),
                        StartsWith(path + ": ") && Contains("'steps/loss/c'") && Contains("steps/loss/b"));
    REQUIRE_THROWS_AS(writer.curve("steps/loss"), FileError);
    REQUIRE_THROWS_WITH(writer.append(2, 1.0), StartsWith(path + ": ") && Contains("index 2"));
    REQUIRE_THROWS_WITH(writer.finish("done", ""), StartsWith(path + ": ") && Contains("'done'"));
    Attributes extra;
    extra.integers["schema_version"] = 9;
    REQUIRE_THROWS_WITH(writer.finish("completed", "", extra), Contains("'schema_version'"));
    writer.finish("completed", "");
    REQUIRE_THROWS_WITH(writer.append(0, 1.0), StartsWith(path + ": ") && Contains("after finish"));
    REQUIRE_THROWS_WITH(writer.flush(), Contains("after finish"));
    REQUIRE_THROWS_WITH(writer.finish("completed", ""), Contains("after finish"));
    CHECK(TrialReader(path).integer("schema_version") == kSchemaVersion);
  }
}

TEST_CASE("h5py reads the trial file as written", "[results][python]") {
  if (std::system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") != 0) {
    WARN("skipped: /usr/bin/python3 with h5py is not installed");
    return;
  }
  TempDir dir;
  const std::string path = dir.file("py.h5");
  const std::vector<double> values = {0.1, -2.5, 1e-12, 12345.678901234567};
  Attributes attributes;
  attributes.text["note"] = "caf\xc3\xa9";
  attributes.integers["seed"] = 1234567890123LL;
  {
    TrialWriter writer(path, attributes, {"steps/loss/top_left"});
    appendAll(writer, 0, values);
    writer.finish("completed", "");
  }
  const std::string script =
      "import sys, h5py\n"
      "f = h5py.File(sys.argv[1], 'r')\n"
      "a = f.attrs\n"
      "print(type(a['status']).__name__, a['status'])\n"
      "print(type(a['error']).__name__, repr(a['error']))\n"
      "print(a['note'] == 'caf\\u00e9')\n"
      "print(a['seed'].dtype, int(a['seed']), a['schema_version'].dtype, int(a['schema_version']))\n"
      "d = f['steps/loss/top_left']\n"
      "print(d.dtype, d.maxshape, d.chunks)\n"
      "print(' '.join(repr(float(v)) for v in d[()]))\n";
  const std::string scriptPath = dir.file("read.py");
  writeBytes(scriptPath, script);
  const std::string output = run("/usr/bin/python3 '" + scriptPath + "' '" + path + "' 2>&1");
  std::istringstream lines(output);
  std::string line;
  std::vector<std::string> got;
  while (std::getline(lines, line)) got.push_back(line);
  INFO("python printed:\n" << output);
  REQUIRE(got.size() == 6);
  CHECK(got[0] == "str completed");
  CHECK(got[1] == "str ''");
  CHECK(got[2] == "True");
  CHECK(got[3] == "int64 1234567890123 int64 " + std::to_string(kSchemaVersion));
  CHECK(got[4] == "float64 (None,) (1024,)");
  std::istringstream numbers(got[5]);
  std::vector<double> parsed;
  for (std::string token; numbers >> token;) parsed.push_back(std::strtod(token.c_str(), nullptr));
  CHECK(parsed == values);
}

TEST_CASE("the file appears complete under its name: staged, then renamed", "[results][crash]") {
  TempDir dir;
  const std::string path = dir.file("staged.h5");
  auto entries = [&] {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path()))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  };
  {
    TrialWriter first(path, {}, {"x"});
    appendAll(first, 0, {1.0});
    first.finish("completed", "");
  }
  REQUIRE(entries() == std::vector<std::string>{"staged.h5"});
  const std::string finished = readBytes(path);
  {
    // Overwriting: the old file stays under the name until the new one is in
    // SWMR mode, and no staging file is left once it is.
    TrialWriter second(path, {}, {"x"}, /*overwrite=*/true);
    REQUIRE(entries() == std::vector<std::string>{"staged.h5"});
    CHECK(TrialReader(path).text("status") == "running");
    appendAll(second, 0, {2.0, 3.0});
    second.finish("failed", "stopped");
  }
  REQUIRE(entries() == std::vector<std::string>{"staged.h5"});
  const TrialReader reader(path);
  CHECK(reader.text("status") == "failed");
  CHECK(reader.curve("x") == std::vector<double>{2.0, 3.0});
  CHECK(readBytes(path) != finished);
  // Without overwrite an existing file is refused, and nothing is left behind.
  REQUIRE_THROWS_WITH(TrialWriter(path, {}, {"x"}), Catch::Matchers::Contains("already exists"));
  REQUIRE(entries() == std::vector<std::string>{"staged.h5"});
}
