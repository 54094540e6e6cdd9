// SIGTERM and SIGINT for blueprint-syncd: gRPC must not be shut down from a
// signal handler, so the signals are blocked before any thread starts (every
// thread inherits the mask) and an ordinary thread waits for them.
#ifndef BLUEPRINTSYNC_SERVICE_SERVER_TERMINATION_SIGNALS_H_
#define BLUEPRINTSYNC_SERVICE_SERVER_TERMINATION_SIGNALS_H_

namespace blueprintsync::server {

// Call first in main(), before any thread exists.
void BlockTerminationSignals();

// Blocks until SIGTERM or SIGINT arrives; returns "SIGTERM" or "SIGINT".
const char* WaitForTerminationSignal();

}  // namespace blueprintsync::server

#endif  // BLUEPRINTSYNC_SERVICE_SERVER_TERMINATION_SIGNALS_H_
