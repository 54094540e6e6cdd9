#include "service/tencent/testing/fake_lighthouse_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "service/tencent/api_error.h"

namespace blueprintsync::testing {
namespace {

using tencent::Blueprint;
using tencent::CallOptions;
using tencent::DeleteBlueprintsRequest;
using tencent::DeleteBlueprintsResponse;
using tencent::DescribeBlueprintsRequest;
using tencent::DescribeBlueprintsResponse;
using tencent::SyncBlueprintRequest;
using tencent::SyncBlueprintResponse;

// The filters DescribeBlueprints documents; an unknown filter matches
// nothing, so a caller relying on one that the fake ignores would notice.
bool Matches(const Blueprint& b, const std::vector<tencent::DescribeFilter>& filters) {
  for (const auto& f : filters) {
    std::string v;
    if (f.name == "blueprint-name") {
      v = b.blueprint_name;
    } else if (f.name == "blueprint-type") {
      v = b.blueprint_type;
    } else if (f.name == "blueprint-state") {
      v = b.blueprint_state;
    } else if (f.name == "blueprint-id") {
      v = b.blueprint_id;
    } else {
      return false;
    }
    if (std::find(f.values.begin(), f.values.end(), v) == f.values.end()) return false;
  }
  return true;
}

constexpr char kDeleteBlueprints[] = "DeleteBlueprints";

// The states Tencent lets DeleteBlueprints remove.
bool IsDeletableState(const std::string& state) {
  return state == "NORMAL" || state == "ISOLATED" || state == "CREATEFAILED" ||
         state == "SYNCING_FAILED";
}

// A Tencent error answer as the real client surfaces it (an ApiError
// payload, the canonical code of the error table).
absl::Status TencentError(std::string code, std::string message, std::string request_id) {
  tencent::ApiError error;
  error.kind = tencent::ErrorKind::kApi;
  error.code = std::move(code);
  error.message = std::move(message);
  error.request_id = std::move(request_id);
  error.action = kDeleteBlueprints;
  error.http_status = 200;
  return tencent::MakeStatus(error);
}

}  // namespace

void FakeLighthouseClient::ScriptSync(SyncHandler handler) {
  absl::MutexLock lock(&mu_);
  script_.push_back(std::move(handler));
}

void FakeLighthouseClient::ScriptSyncResult(absl::StatusOr<SyncBlueprintResponse> result) {
  ScriptSync([result](const SyncBlueprintRequest&, const CallOptions&) { return result; });
}

void FakeLighthouseClient::HoldSync() {
  absl::MutexLock lock(&mu_);
  held_ = true;
}

void FakeLighthouseClient::ReleaseSync() {
  absl::MutexLock lock(&mu_);
  held_ = false;
}

void FakeLighthouseClient::Put(const std::string& region, const Blueprint& blueprint) {
  absl::MutexLock lock(&mu_);
  world_[region][blueprint.blueprint_id] = blueprint;
}

void FakeLighthouseClient::SetState(const std::string& region, const std::string& id,
                                    const std::string& state) {
  absl::MutexLock lock(&mu_);
  Blueprint& b = world_[region][id];
  b.blueprint_id = id;
  b.blueprint_state = state;
}

void FakeLighthouseClient::SetDescribeHook(DescribeHook hook) {
  absl::MutexLock lock(&mu_);
  describe_hook_ = std::move(hook);
}

void FakeLighthouseClient::Remove(const std::string& region, const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = world_.find(region);
  if (it != world_.end()) it->second.erase(id);
  occupied_.erase({region, id});
}

void FakeLighthouseClient::ScriptDeleteError(absl::Status status) {
  absl::MutexLock lock(&mu_);
  delete_script_.push_back(std::move(status));
}

void FakeLighthouseClient::SetOccupied(const std::string& region, const std::string& id,
                                       bool occupied) {
  absl::MutexLock lock(&mu_);
  if (occupied) {
    occupied_.insert({region, id});
  } else {
    occupied_.erase({region, id});
  }
}

void FakeLighthouseClient::FailUnscripted(absl::Status status) {
  absl::MutexLock lock(&mu_);
  unscripted_ = std::move(status);
}

std::vector<FakeLighthouseClient::SyncCall> FakeLighthouseClient::sync_calls() const {
  absl::MutexLock lock(&mu_);
  return syncs_;
}

int FakeLighthouseClient::sync_count() const {
  absl::MutexLock lock(&mu_);
  return sync_count_;
}

int FakeLighthouseClient::sync_completed() const {
  absl::MutexLock lock(&mu_);
  return sync_completed_;
}

std::vector<DescribeBlueprintsRequest> FakeLighthouseClient::describe_calls() const {
  absl::MutexLock lock(&mu_);
  return describes_;
}

int64_t FakeLighthouseClient::describe_count() const {
  absl::MutexLock lock(&mu_);
  return describe_count_;
}

void FakeLighthouseClient::ClearDescribeCalls() {
  absl::MutexLock lock(&mu_);
  describes_.clear();
}

int FakeLighthouseClient::source_looks(const std::string& region, const std::string& id) const {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& d : describes_) {
    if (d.region == region && d.blueprint_ids.size() == 1 && d.blueprint_ids[0] == id) ++n;
  }
  return n;
}

std::vector<std::string> FakeLighthouseClient::events() const {
  absl::MutexLock lock(&mu_);
  return events_;
}

std::vector<std::string> FakeLighthouseClient::background_events() const {
  absl::MutexLock lock(&mu_);
  return background_events_;
}

void FakeLighthouseClient::RecordEventLocked(std::string event, const CallOptions& options) {
  if (options.priority == tencent::CallPriority::kBackground) background_events_.push_back(event);
  events_.push_back(std::move(event));
}

std::vector<DeleteBlueprintsRequest> FakeLighthouseClient::delete_calls() const {
  absl::MutexLock lock(&mu_);
  return deletes_;
}

int FakeLighthouseClient::delete_count() const {
  absl::MutexLock lock(&mu_);
  return delete_count_;
}

absl::StatusOr<SyncBlueprintResponse> FakeLighthouseClient::SyncBlueprint(
    const SyncBlueprintRequest& request, const CallOptions& options) {
  SyncHandler handler;
  {
    absl::MutexLock lock(&mu_);
    ++sync_count_;
    if (options_.record_calls) {
      syncs_.push_back({request, options});
      RecordEventLocked(absl::StrCat("sync:", request.blueprint_id), options);
    }
    if (!script_.empty()) {
      handler = std::move(script_.front());
      script_.pop_front();
    }
    mu_.Await(absl::Condition(
        +[](bool* held) { return !*held; }, &held_));
  }
  absl::StatusOr<SyncBlueprintResponse> result;
  if (handler) {
    result = handler(request, options);
  } else {
    absl::MutexLock lock(&mu_);
    if (!unscripted_.ok()) {
      result = unscripted_;
    } else {
      SyncBlueprintResponse r;
      for (const auto& region : request.destination_regions) {
        r.destinations.push_back({region, absl::StrFormat("lhbp-n%07d", ++next_id_)});
      }
      r.request_id = absl::StrCat("sync-req-", next_id_);
      result = std::move(r);
    }
  }
  absl::MutexLock lock(&mu_);
  ++sync_completed_;
  return result;
}

absl::StatusOr<DescribeBlueprintsResponse> FakeLighthouseClient::DescribeBlueprints(
    const DescribeBlueprintsRequest& request, const CallOptions& options) {
  DescribeHook hook;
  {
    absl::MutexLock lock(&mu_);
    ++describe_count_;
    if (options_.record_calls) {
      describes_.push_back(request);
      if (!request.filters.empty()) {
        RecordEventLocked(absl::StrCat("list:", request.region), options);
      } else if (request.blueprint_ids.size() == 1 &&
                 absl::StartsWith(request.blueprint_ids[0], options_.source_id_prefix)) {
        RecordEventLocked(absl::StrCat("source:", request.region, "/", request.blueprint_ids[0]),
                          options);
      } else {
        RecordEventLocked(absl::StrCat("poll:", request.region), options);
      }
    }
    hook = describe_hook_;
  }
  // Outside the lock: a hook may block, or call back into the fake.
  if (hook) {
    if (std::optional<absl::StatusOr<DescribeBlueprintsResponse>> answer = hook(request)) {
      return *std::move(answer);
    }
  }
  absl::MutexLock lock(&mu_);
  if (!unscripted_.ok()) return unscripted_;
  DescribeBlueprintsResponse resp;
  resp.request_id = "describe-req";
  const auto& region = world_[request.region];
  if (!request.blueprint_ids.empty()) {
    for (const auto& id : request.blueprint_ids) {
      auto it = region.find(id);
      if (it != region.end()) resp.blueprints.push_back(it->second);
    }
  } else {
    for (const auto& [id, b] : region) {
      if (Matches(b, request.filters)) resp.blueprints.push_back(b);
    }
  }
  resp.total_count = static_cast<int64_t>(resp.blueprints.size());
  return resp;
}

absl::StatusOr<tencent::DescribeRegionsResponse> FakeLighthouseClient::DescribeRegions(
    const std::string&, const CallOptions&) {
  absl::MutexLock lock(&mu_);
  if (!unscripted_.ok()) return unscripted_;
  return absl::UnimplementedError("DescribeRegions is not faked");
}

absl::StatusOr<DeleteBlueprintsResponse> FakeLighthouseClient::DeleteBlueprints(
    const DeleteBlueprintsRequest& request, const CallOptions& options) {
  absl::MutexLock lock(&mu_);
  ++delete_count_;
  if (options_.record_calls) {
    deletes_.push_back(request);
    RecordEventLocked(
        absl::StrCat("delete:", request.region, "/", absl::StrJoin(request.blueprint_ids, ",")),
        options);
  }
  // The real stack refuses these before anything is sent, scripts or not.
  if (absl::Status s = tencent::ValidateDeleteBlueprints(request); !s.ok()) return s;
  if (!delete_script_.empty()) {
    absl::Status scripted = std::move(delete_script_.front());
    delete_script_.pop_front();
    if (!scripted.ok()) return scripted;
  }
  if (!unscripted_.ok()) return unscripted_;
  const std::string request_id = absl::StrCat("delete-req-", delete_count_);
  // All or nothing, as upstream: every id is checked before any is removed.
  for (const std::string& id : request.blueprint_ids) {
    if (absl::Status s = DeleteRefusalLocked(request.region, id, request_id); !s.ok()) return s;
  }
  auto& region = world_[request.region];
  for (const std::string& id : request.blueprint_ids) region.erase(id);
  DeleteBlueprintsResponse response;
  response.request_id = request_id;
  return response;
}

absl::Status FakeLighthouseClient::DeleteRefusalLocked(const std::string& region,
                                                       const std::string& id,
                                                       const std::string& request_id) const {
  const Blueprint* blueprint = nullptr;
  if (auto r = world_.find(region); r != world_.end()) {
    if (auto b = r->second.find(id); b != r->second.end()) blueprint = &b->second;
  }
  if (blueprint == nullptr ||
      (!blueprint->blueprint_type.empty() && blueprint->blueprint_type != "PRIVATE")) {
    return TencentError(
        "ResourceNotFound.PrivateBlueprintNotFound",
        absl::StrCat("The custom image `", id, "` does not exist in `", region, "`."), request_id);
  }
  if (occupied_.count({region, id}) > 0) {
    return TencentError("UnsupportedOperation.BlueprintOccupied",
                        absl::StrCat("The image `", id, "` is in use."), request_id);
  }
  if (!IsDeletableState(blueprint->blueprint_state)) {
    return TencentError("UnsupportedOperation.BlueprintCurStateInvalid",
                        absl::StrCat("The image state `", blueprint->blueprint_state.substr(0, 64),
                                     "` does not support this operation."),
                        request_id);
  }
  return absl::OkStatus();
}

}  // namespace blueprintsync::testing
