// Stopping cleanly on SIGINT and SIGTERM: the handlers only record the
// signal; the trainer (TrainHooks::stopRequested) and the sweep runner poll it.
#pragma once

namespace fulcrum {

/// Installs SIGINT and SIGTERM handlers that record the signal instead of
/// ending the process. Idempotent.
void installStopHandlers();

/// The last SIGINT or SIGTERM received since installStopHandlers(), or 0.
int stopSignal();

}  // namespace fulcrum
