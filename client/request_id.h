// NewRequestId(): the idempotency key the CLI puts on SyncBlueprint and
// RetrySyncJob when the user gave none, so that re-sending a call whose
// answer was lost returns the job it made instead of making (and paying for)
// a second one.
#ifndef BLUEPRINTSYNC_CLIENT_REQUEST_ID_H_
#define BLUEPRINTSYNC_CLIENT_REQUEST_ID_H_

#include <string>

#include "absl/random/bit_gen_ref.h"

namespace blueprintsync::cli {

// A random UUID, version 4 (RFC 4122 variant), lower-case:
// "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c". The default generator is seeded
// from the operating system's entropy, so ids from separate runs (and
// separate hosts) do not collide.
std::string NewRequestId();
std::string NewRequestId(absl::BitGenRef gen);

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_REQUEST_ID_H_
