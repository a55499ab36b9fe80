// LibTorch warnings as errors: a trial's warning ends it as failed, never only
// a line in a log (issue 15).
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace fulcrum {

/// While alive, receives every LibTorch warning (TORCH_WARN, and
/// TORCH_WARN_ONCE each time: warn-always is set) instead of LibTorch's
/// default handler, which prints to stderr. Nothing is printed; the caller
/// takes the warnings and fails what it was doing (TrainHooks::pendingWarning).
/// Restores the previous handler and warn-always setting when destroyed.
/// LibTorch's handler is per thread (warnings of the autograd engine's threads
/// are replayed on the calling thread): create it on the thread that trains.
class WarningCapture {
 public:
  WarningCapture();
  ~WarningCapture();
  WarningCapture(const WarningCapture&) = delete;
  WarningCapture& operator=(const WarningCapture&) = delete;

  /// The warnings received since the last call, oldest first, each
  /// "TEXT (at FILE:LINE)"; clears them. Empty if there were none.
  std::vector<std::string> take();
  /// The first warning of take() joined with how many more there were, or ""
  /// if none: "TEXT (at FILE:LINE) (and 2 more warnings)".
  std::string takeSummary();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace fulcrum
