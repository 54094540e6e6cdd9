// FakeLighthouseClient: the one in-memory LighthouseClient for tests and
// benchmarks of the layers above the Tencent client (the job engine, the
// handlers). It stands where the whole production stack would, so nothing
// below it (pacing, retries, HTTP) is involved.
//
//  - SyncBlueprint answers from a queue of per-call handlers; unscripted calls
//    succeed with fresh destination ids and create nothing upstream.
//  - DescribeBlueprints answers from a small world of blueprints per region,
//    by ids or by filters, whose states a test advances; a hook can fail a
//    call or answer it instead.
//  - DeleteBlueprints removes blueprints from that world with Tencent's
//    rules (deletable states, unknown ids, blueprints in use, all or
//    nothing) and the real client's local validation; scripted errors can
//    answer calls instead.
//  - Every call is recorded (optionally counted only) and the recording is
//    readable while calls run: thread-safe throughout.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_TESTING_FAKE_LIGHTHOUSE_CLIENT_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_TESTING_FAKE_LIGHTHOUSE_CLIENT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "service/tencent/lighthouse_client.h"
#include "service/tencent/lighthouse_types.h"

namespace blueprintsync::testing {

class FakeLighthouseClient final : public tencent::LighthouseClient {
 public:
  using SyncHandler = std::function<absl::StatusOr<tencent::SyncBlueprintResponse>(
      const tencent::SyncBlueprintRequest&, const tencent::CallOptions&)>;
  // Returns nullopt to let the world answer, else the call's result: an
  // error, or a whole answer (a hook returning an OK status is a test bug).
  using DescribeHook =
      std::function<std::optional<absl::StatusOr<tencent::DescribeBlueprintsResponse>>(
          const tencent::DescribeBlueprintsRequest&)>;

  struct Options {
    // One-id lookups of ids with this prefix show as "source:" in events():
    // the engine looks at a source blueprint that way, and a test reading
    // the order of calls needs to tell that look from a tracker poll.
    std::string source_id_prefix = "lhbp-src";
    // False: keep the counts only. For benchmarks, where copying every
    // request would be measured as the caller's cost.
    bool record_calls = true;
  };

  struct SyncCall {
    tencent::SyncBlueprintRequest request;
    tencent::CallOptions options;
  };

  FakeLighthouseClient() : FakeLighthouseClient(Options()) {}
  explicit FakeLighthouseClient(Options options) : options_(std::move(options)) {}

  // --- Scripting SyncBlueprint: handlers answer calls in order, one each.
  void ScriptSync(SyncHandler handler);
  void ScriptSyncResult(absl::StatusOr<tencent::SyncBlueprintResponse> result);
  void ScriptSyncError(const absl::Status& status) { ScriptSyncResult(status); }
  // While held, SyncBlueprint calls block after being recorded: a test can
  // look at what the caller did while a paid call was in flight.
  void HoldSync();
  void ReleaseSync();

  // --- The world DescribeBlueprints answers from.
  void Put(const std::string& region, const tencent::Blueprint& blueprint);
  // Creates a bare blueprint if `id` is unknown.
  void SetState(const std::string& region, const std::string& id, const std::string& state);
  void SetDescribeHook(DescribeHook hook);
  // Deletes a blueprint behind the caller's back (someone else did it); no
  // call is recorded. Unknown ids are ignored.
  void Remove(const std::string& region, const std::string& id);

  // --- DeleteBlueprints.
  // The next call (one per scripted status, in order) answers `status`
  // without touching the world. An OK status lets the world answer that
  // call, so a test can fail the second call only. To play a delete that
  // ran but whose answer was lost, Remove() the ids and script the error.
  void ScriptDeleteError(absl::Status status);
  // While occupied (a sync from it, an instance), deleting `id` fails with
  // UnsupportedOperation.BlueprintOccupied.
  void SetOccupied(const std::string& region, const std::string& id, bool occupied);

  // Every call that no script or hook answers fails with `status` (every
  // action): a client with no upstream at all. OK restores the defaults.
  void FailUnscripted(absl::Status status);

  // --- What callers did.
  std::vector<SyncCall> sync_calls() const;
  int sync_count() const;
  // SyncBlueprint calls that have returned (a held call has not).
  int sync_completed() const;
  std::vector<tencent::DescribeBlueprintsRequest> describe_calls() const;
  int64_t describe_count() const;
  void ClearDescribeCalls();
  // One-id lookups of `id` in `region`.
  int source_looks(const std::string& region, const std::string& id) const;
  // In call order: "sync:<bp>", "source:<region>/<bp>" (see
  // Options::source_id_prefix), "list:<region>" (by filters) and
  // "poll:<region>" (any other lookup by ids) and
  // "delete:<region>/<id>[,<id>...]".
  std::vector<std::string> events() const;
  // The events() of calls made at background priority
  // (tencent::CallOptions::priority), in call order.
  std::vector<std::string> background_events() const;
  std::vector<tencent::DeleteBlueprintsRequest> delete_calls() const;
  int delete_count() const;

  absl::StatusOr<tencent::SyncBlueprintResponse> SyncBlueprint(
      const tencent::SyncBlueprintRequest& request, const tencent::CallOptions& options) override;
  absl::StatusOr<tencent::DescribeBlueprintsResponse> DescribeBlueprints(
      const tencent::DescribeBlueprintsRequest& request,
      const tencent::CallOptions& options) override;
  // No test of the layers above needs regions from upstream yet.
  absl::StatusOr<tencent::DescribeRegionsResponse> DescribeRegions(
      const std::string& region, const tencent::CallOptions& options) override;
  // Deletable: NORMAL, ISOLATED, CREATEFAILED, SYNCING_FAILED; an id that
  // is not in the world (or not PRIVATE; a bare one from SetState() counts
  // as PRIVATE) is ResourceNotFound.PrivateBlueprintNotFound, an occupied
  // one UnsupportedOperation.BlueprintOccupied, any other state
  // UnsupportedOperation.BlueprintCurStateInvalid: ApiError statuses as the
  // real client returns them. The first failing id fails the call and
  // nothing is deleted.
  absl::StatusOr<tencent::DeleteBlueprintsResponse> DeleteBlueprints(
      const tencent::DeleteBlueprintsRequest& request,
      const tencent::CallOptions& options) override;

 private:
  using BlueprintKey = std::pair<std::string, std::string>;  // (region, id)

  void RecordEventLocked(std::string event, const tencent::CallOptions& options)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Why `id` in `region` cannot be deleted, or OK.
  absl::Status DeleteRefusalLocked(const std::string& region, const std::string& id,
                                   const std::string& request_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  std::deque<SyncHandler> script_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status unscripted_ ABSL_GUARDED_BY(mu_);
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
  int sync_count_ ABSL_GUARDED_BY(mu_) = 0;
  int sync_completed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t describe_count_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<SyncCall> syncs_ ABSL_GUARDED_BY(mu_);
  std::vector<tencent::DescribeBlueprintsRequest> describes_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> background_events_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::map<std::string, tencent::Blueprint>> world_ ABSL_GUARDED_BY(mu_);
  DescribeHook describe_hook_ ABSL_GUARDED_BY(mu_);
  std::deque<absl::Status> delete_script_ ABSL_GUARDED_BY(mu_);
  std::set<BlueprintKey> occupied_ ABSL_GUARDED_BY(mu_);
  int delete_count_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<tencent::DeleteBlueprintsRequest> deletes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_TESTING_FAKE_LIGHTHOUSE_CLIENT_H_
