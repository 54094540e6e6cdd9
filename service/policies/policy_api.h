// PolicyApi: the PolicyService the gRPC handlers call, over a PolicyStore.
// Every call returns at once and runs its store work on the API's own
// threads, never on the caller's (a gRPC callback thread must not wait for
// a commit), then answers through the callback from there.
//
// It turns a validated request into a spec write: Create stamps the
// policy's uid, times and creator; Update merges the masked fields onto the
// stored spec (read, merge, write guarded by the revision read, again if
// another write came in between) and checks new destinations against the
// stored source region, which the request does not carry; Delete removes
// the record, or with delete_copies marks it for the controller. After
// every successful write it calls `on_change` (the controller's Wake), so
// a change on this replica is acted on at once, not at the next interval.
#ifndef BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_API_H_
#define BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_API_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "service/common/clock.h"
#include "service/common/executor.h"
#include "service/policies/policy_service.h"
#include "service/policies/policy_store.h"

namespace blueprintsync::policies {

class PolicyApi final : public PolicyService {
 public:
  // `store` and `clock` are not owned and must outlive this. `on_change`
  // runs on the API's threads after each successful write; it must be
  // quick and must not call back into the API.
  PolicyApi(PolicyStore* store, std::function<void()> on_change,
            Clock* clock = SystemClock::Default(), int threads = 2);
  ~PolicyApi() override;  // Shutdown()
  PolicyApi(const PolicyApi&) = delete;
  PolicyApi& operator=(const PolicyApi&) = delete;

  void Create(v1::SyncPolicy policy, std::string creator, PolicyCallback done) override;
  void Get(const std::string& name, PolicyCallback done) override;
  void List(const PolicyQuery& query, PageCallback done) override;
  void Update(v1::SyncPolicy policy, std::vector<std::string> paths,
              std::optional<int64_t> expected_revision, PolicyCallback done) override;
  void Delete(const std::string& name, std::optional<int64_t> expected_revision, bool delete_copies,
              StatusCallback done) override;

  // Stops taking calls: calls that have not started their store work are
  // answered jobs::ServiceShuttingDown(), those running finish and answer
  // as usual, later calls are answered ServiceShuttingDown() at once.
  // Returns when no call is running. Idempotent.
  void Shutdown();

 private:
  // Runs `work` on the executor and answers `done` with its result, or
  // with ServiceShuttingDown() if the API stopped before it started.
  template <typename Result>
  void Run(std::function<void(Result)> done, std::function<Result()> work);

  absl::StatusOr<v1::SyncPolicy> DoCreate(v1::SyncPolicy policy, const std::string& creator);
  absl::StatusOr<v1::SyncPolicy> DoUpdate(const v1::SyncPolicy& policy,
                                          const std::vector<std::string>& paths,
                                          std::optional<int64_t> expected_revision);
  absl::Status DoDelete(const std::string& name, std::optional<int64_t> expected_revision,
                        bool delete_copies);
  void Changed();

  PolicyStore* const store_;
  const std::function<void()> on_change_;
  Clock* const clock_;
  std::atomic<bool> stopping_{false};
  Executor executor_;  // last: its threads stop before the rest goes
};

}  // namespace blueprintsync::policies

#endif  // BLUEPRINTSYNC_SERVICE_POLICIES_POLICY_API_H_
