// Exit codes of the blueprint-sync CLI. Scripts branch on these, so they are
// part of the CLI's contract and documented in --help.
#ifndef BLUEPRINTSYNC_CLIENT_EXIT_CODES_H_
#define BLUEPRINTSYNC_CLIENT_EXIT_CODES_H_

namespace blueprintsync::cli {

enum ExitCode : int {
  // The call succeeded; for `sync --wait`, `retry --wait` and `watch`, the
  // job SUCCEEDED; for `cancel --wait`, the job ended CANCELLED; for
  // `policy get --wait`, the policy is in sync.
  kExitOk = 0,
  // `sync --wait` / `retry --wait` / `watch`: the job ended FAILED or
  // CANCELLED (it did not succeed); `cancel --wait`: the job ended otherwise
  // than CANCELLED; `policy get --wait`: a region of the policy is FAILED.
  kExitJobFailed = 1,
  // Bad command line: unknown flag, missing or invalid value.
  kExitUsage = 2,
  // The service could not be reached or rejected the call.
  kExitRpcError = 3,
  // `policy get --wait --timeout D`: the policy was not in sync, and no
  // region had failed, when D ran out.
  kExitTimeout = 4,
};

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_EXIT_CODES_H_
