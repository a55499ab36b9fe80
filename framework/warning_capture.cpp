#include "framework/warning_capture.h"

#include <c10/util/Exception.h>

#include <mutex>
#include <utility>

#include <fmt/format.h>

namespace fulcrum {

namespace {

class RecordingHandler : public c10::WarningHandler {
 public:
  void process(const c10::SourceLocation& location, const std::string& message, const bool /*verbatim*/) override {
    const std::lock_guard<std::mutex> lock(mutex_);
    warnings_.push_back(fmt::format("{} (at {}:{})", message, location.file, location.line));
  }

  std::vector<std::string> take() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return std::exchange(warnings_, {});
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> warnings_;
};

}  // namespace

struct WarningCapture::State {
  RecordingHandler handler;
  c10::WarningHandler* previous = nullptr;
  bool previousWarnAlways = false;
};

WarningCapture::WarningCapture() : state_(std::make_unique<State>()) {
  state_->previous = c10::Warning::get_warning_handler();
  state_->previousWarnAlways = c10::Warning::get_warnAlways();
  c10::Warning::set_warning_handler(&state_->handler);
  c10::Warning::set_warnAlways(true);
}

WarningCapture::~WarningCapture() {
  c10::Warning::set_warning_handler(state_->previous);
  c10::Warning::set_warnAlways(state_->previousWarnAlways);
}

std::vector<std::string> WarningCapture::take() { return state_->handler.take(); }

std::string WarningCapture::takeSummary() {
  const std::vector<std::string> warnings = take();
  if (warnings.empty()) return "";
  if (warnings.size() == 1) return warnings.front();
  return fmt::format("{} (and {} more warning{})", warnings.front(), warnings.size() - 1,
                     warnings.size() == 2 ? "" : "s");
}

}  // namespace fulcrum
