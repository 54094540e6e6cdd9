#include "tests/e2e/policy_e2e_util.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/empty.pb.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

constexpr absl::Duration kCallDeadline = absl::Seconds(30);

void SetDeadline(grpc::ClientContext& context) {
  context.set_deadline(absl::ToChronoTime(absl::Now() + kCallDeadline));
}

v1::SyncPolicy BasePolicy(const std::string& source_region,
                          const std::vector<std::string>& destinations, int keep_versions) {
  v1::SyncPolicy p;
  p.set_source_region(source_region);
  for (const std::string& d : destinations) p.add_destination_regions(d);
  p.set_keep_versions(keep_versions);
  return p;
}

}  // namespace

v1::SyncPolicy FamilyPolicy(const std::string& source_region, const std::string& name,
                            const std::vector<std::string>& destinations, int keep_versions) {
  v1::SyncPolicy p = BasePolicy(source_region, destinations, keep_versions);
  p.set_blueprint_name(name);
  return p;
}

v1::SyncPolicy FixedPolicy(const std::string& source_region, const std::string& blueprint_id,
                           const std::vector<std::string>& destinations, int keep_versions) {
  v1::SyncPolicy p = BasePolicy(source_region, destinations, keep_versions);
  p.set_blueprint_id(blueprint_id);
  return p;
}

grpc::Status CreatePolicy(v1::BlueprintSync::Stub& stub, const std::string& id,
                          const v1::SyncPolicy& policy, v1::SyncPolicy* created,
                          bool validate_only) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::CreateSyncPolicyRequest request;
  request.set_sync_policy_id(id);
  *request.mutable_sync_policy() = policy;
  request.set_validate_only(validate_only);
  return stub.CreateSyncPolicy(&context, request, created);
}

grpc::Status GetPolicy(v1::BlueprintSync::Stub& stub, const std::string& name,
                       v1::SyncPolicy* policy) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::GetSyncPolicyRequest request;
  request.set_name(name);
  return stub.GetSyncPolicy(&context, request, policy);
}

grpc::Status UpdatePolicy(v1::BlueprintSync::Stub& stub, const v1::SyncPolicy& policy,
                          const std::vector<std::string>& paths, v1::SyncPolicy* updated) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::UpdateSyncPolicyRequest request;
  *request.mutable_sync_policy() = policy;
  for (const std::string& p : paths) request.mutable_update_mask()->add_paths(p);
  return stub.UpdateSyncPolicy(&context, request, updated);
}

grpc::Status DeletePolicy(v1::BlueprintSync::Stub& stub, const std::string& name,
                          bool delete_copies) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::DeleteSyncPolicyRequest request;
  request.set_name(name);
  request.set_delete_copies(delete_copies);
  google::protobuf::Empty empty;
  return stub.DeleteSyncPolicy(&context, request, &empty);
}

grpc::Status GetJob(v1::BlueprintSync::Stub& stub, const std::string& name, v1::SyncJob* job) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::GetSyncJobRequest request;
  request.set_name(name);
  return stub.GetSyncJob(&context, request, job);
}

absl::StatusOr<std::vector<v1::SyncJob>> PolicyJobs(v1::BlueprintSync::Stub& stub,
                                                    const std::string& policy_name) {
  std::vector<v1::SyncJob> out;
  v1::ListSyncJobsRequest request;
  request.set_filter(absl::StrCat("policy = ", policy_name));
  request.set_order_by("create_time");
  request.set_page_size(1000);
  for (int pages = 0; pages < 100; ++pages) {
    grpc::ClientContext context;
    SetDeadline(context);
    v1::ListSyncJobsResponse response;
    grpc::Status s = stub.ListSyncJobs(&context, request, &response);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
    out.insert(out.end(), response.sync_jobs().begin(), response.sync_jobs().end());
    if (response.next_page_token().empty()) return out;
    request.set_page_token(response.next_page_token());
  }
  return absl::InternalError("ListSyncJobs kept returning page tokens");
}

absl::StatusOr<v1::SyncPolicy> WaitForPolicy(const std::function<v1::BlueprintSync::Stub&()>& stub,
                                             const std::string& name,
                                             const std::function<bool(const v1::SyncPolicy&)>& done,
                                             absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  v1::SyncPolicy policy;
  grpc::Status last;
  for (;;) {
    last = GetPolicy(stub(), name, &policy);
    if (last.ok() && done(policy)) return policy;
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      name, " did not reach the expected state within ", absl::FormatDuration(timeout),
      "; last GetSyncPolicy: ",
      last.ok() ? DescribePolicy(policy)
                : absl::StrCat("code ", last.error_code(), ": ", last.error_message())));
}

bool FullyInSync(const v1::SyncPolicy& policy) {
  if (!policy.in_sync() || policy.source_blueprint_id().empty()) return false;
  if (policy.regions_size() != policy.destination_regions_size()) return false;
  for (const v1::SyncPolicyRegion& r : policy.regions()) {
    if (r.state() != v1::SyncPolicyRegion::IN_SYNC || r.blueprint_id().empty() ||
        r.serving_source_blueprint_id() != policy.source_blueprint_id()) {
      return false;
    }
  }
  return true;
}

bool InSyncFor(const v1::SyncPolicy& policy, const std::string& source) {
  return policy.source_blueprint_id() == source && FullyInSync(policy);
}

v1::SyncPolicyRegion RegionOf(const v1::SyncPolicy& policy, const std::string& region) {
  for (const v1::SyncPolicyRegion& r : policy.regions()) {
    if (r.region() == region) return r;
  }
  return v1::SyncPolicyRegion();
}

std::string DescribePolicy(const v1::SyncPolicy& policy) {
  std::vector<std::string> regions;
  for (const v1::SyncPolicyRegion& r : policy.regions()) {
    std::vector<std::string> copies;
    for (const v1::PolicyCopy& c : r.copies()) {
      copies.push_back(
          absl::StrCat(c.blueprint_id(), "<-", c.source_blueprint_id(), ":", c.blueprint_state()));
    }
    regions.push_back(absl::StrCat(
        "\n  ", r.region(), " ", v1::SyncPolicyRegion::State_Name(r.state()),
        " serving=", r.blueprint_id(), "<-", r.serving_source_blueprint_id(),
        " last_job=", r.last_job(), " failures=", r.failures(),
        r.has_last_error() ? absl::StrCat(" last_error={", r.last_error().tencent_code(), " ",
                                          r.last_error().message(), "}")
                           : "",
        " copies=[", absl::StrJoin(copies, " "), "]"));
  }
  return absl::StrCat(
      policy.name(), " source=", policy.source_blueprint_id(), " in_sync=", policy.in_sync(),
      " paused=", policy.paused(), " deleting=", policy.deleting(),
      policy.has_source_error() ? absl::StrCat(" source_error=", policy.source_error().message())
                                : "",
      absl::StrJoin(regions, ""));
}

void ExpectServedUpstream(v1::BlueprintSync::Stub& stub, const EmulatorAdmin& admin,
                          const v1::SyncPolicy& policy) {
  ASSERT_EQ(policy.regions_size(), policy.destination_regions_size()) << DescribePolicy(policy);
  for (int i = 0; i < policy.regions_size(); ++i) {
    const v1::SyncPolicyRegion& r = policy.regions(i);
    SCOPED_TRACE(r.region());
    EXPECT_EQ(r.region(), policy.destination_regions(i)) << "regions in destination order";
    EXPECT_EQ(r.state(), v1::SyncPolicyRegion::IN_SYNC);
    EXPECT_EQ(r.serving_source_blueprint_id(), policy.source_blueprint_id());
    EXPECT_FALSE(r.has_last_error() && r.last_error().code() != 0)
        << r.last_error().ShortDebugString();
    ASSERT_FALSE(r.blueprint_id().empty());
    auto up = UpstreamStates(admin, r.region());
    ASSERT_TRUE(up.ok()) << up.status();
    auto it = up->find(r.blueprint_id());
    ASSERT_NE(it, up->end()) << r.blueprint_id() << " is not in " << r.region() << " upstream";
    EXPECT_EQ(it->second, "NORMAL");
    ASSERT_FALSE(r.last_job().empty());
    v1::SyncJob job;
    grpc::Status s = GetJob(stub, r.last_job(), &job);
    ASSERT_TRUE(s.ok()) << r.last_job() << ": " << s.error_message();
    EXPECT_EQ(job.policy(), policy.name()) << "the job does not name its policy";
    EXPECT_EQ(job.source_region(), policy.source_region());
    EXPECT_EQ(job.blueprint_id(), policy.source_blueprint_id());
    bool made_it = false;
    for (const auto& d : job.destinations()) {
      made_it |= d.region() == r.region() && d.blueprint_id() == r.blueprint_id();
    }
    EXPECT_TRUE(made_it) << r.last_job() << " did not make " << r.blueprint_id() << ": "
                         << job.ShortDebugString();
    // The serving copy is the newest the policy keeps.
    ASSERT_GE(r.copies_size(), 1);
    EXPECT_EQ(r.copies(0).blueprint_id(), r.blueprint_id());
    EXPECT_EQ(r.copies(0).source_blueprint_id(), policy.source_blueprint_id());
  }
}

absl::StatusOr<std::map<std::string, std::string>> UpstreamStates(const EmulatorAdmin& admin,
                                                                  const std::string& region) {
  auto list = admin.Blueprints(region);
  if (!list.ok()) return list.status();
  std::map<std::string, std::string> out;
  for (const EmulatorBlueprint& b : *list) out[b.id] = b.state;
  return out;
}

std::map<std::pair<std::string, std::string>, int> SubmissionsPerSourceAndRegion(
    const std::vector<EmulatorSyncSubmission>& submissions) {
  std::map<std::pair<std::string, std::string>, int> out;
  for (const EmulatorSyncSubmission& s : submissions) {
    for (const std::string& region : s.destination_regions) ++out[{s.blueprint_id, region}];
  }
  return out;
}

std::string SeedNamedJson(const std::string& region, const std::string& id, const std::string& name,
                          const std::string& created) {
  return absl::StrCat("{\"blueprints\":[{\"BlueprintId\":\"", id, "\",\"Region\":\"", region,
                      "\",\"BlueprintName\":\"", name, "\",\"CreatedTime\":\"", created, "\"}]}");
}

}  // namespace blueprintsync::testing
