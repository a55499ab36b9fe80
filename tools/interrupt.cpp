#include "tools/interrupt.h"

#include <csignal>

namespace fulcrum {

namespace {

// Written by the handler, so a lock-free sig_atomic_t rather than state in an object.
volatile std::sig_atomic_t received = 0;

extern "C" void recordSignal(int signal) { received = signal; }

}  // namespace

void installStopHandlers() {
  struct sigaction action {};
  action.sa_handler = recordSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

int stopSignal() { return received; }

}  // namespace fulcrum
