// The Catch2 main of every test binary. Built twice (tests/CMakeLists.txt):
// plain for results/ (no torch), and with FULCRUM_TEST_TORCH_WARNINGS for the
// binaries that link LibTorch, where any LibTorch warning fails the test case
// that caused it (issue 15: no warning text reaches stderr unnoticed).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#if FULCRUM_TEST_TORCH_WARNINGS
#include <c10/util/Exception.h>

#include <iostream>
#include <string>
#include <vector>
#endif

#if FULCRUM_TEST_TORCH_WARNINGS
namespace {

bool inTestCase = false;
std::vector<std::string> strayWarnings;  // outside any test case

/// Turns a LibTorch warning into a failed check of the running test case
/// (FAIL_CHECK: the test case goes on and is reported failed), instead of
/// LibTorch's default of printing it to stderr. LibTorch's handler is per
/// thread: this one serves the thread that runs the tests, where Catch2's
/// assertions are valid (the autograd engine replays its threads' warnings
/// there).
class FailingWarningHandler : public c10::WarningHandler {
 public:
  void process(const c10::SourceLocation& location, const std::string& message,
               const bool /*verbatim*/) override {
    const std::string text = "LibTorch warning: " + message + " (at " + location.file + ":" +
                             std::to_string(location.line) + ")";
    if (inTestCase) {
      FAIL_CHECK(text);
    } else {
      strayWarnings.push_back(text);
    }
  }
};

struct WarningListener : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseStarting(const Catch::TestCaseInfo&) override { inTestCase = true; }
  void testCaseEnded(const Catch::TestCaseStats&) override { inTestCase = false; }
};

}  // namespace

CATCH_REGISTER_LISTENER(WarningListener)
#endif

int main(int argc, char* argv[]) {
#if FULCRUM_TEST_TORCH_WARNINGS
  FailingWarningHandler handler;
  c10::Warning::set_warning_handler(&handler);
  c10::Warning::set_warnAlways(true);  // TORCH_WARN_ONCE too, in every test case
#endif
  int result = Catch::Session().run(argc, argv);
#if FULCRUM_TEST_TORCH_WARNINGS
  c10::Warning::set_warning_handler(nullptr);
  for (const std::string& text : strayWarnings)
    std::cout << "outside any test case: " << text << "\n";
  if (!strayWarnings.empty() && result == 0) result = 1;
#endif
  return result;
}
