// What replication policies cost upstream. 200 policies over all 15
// SyncBlueprint regions (families and fixed blueprint ids, on both sides of
// the Chinese-mainland border, 4 or 9 destinations each) are created on a
// real blueprint-syncd against the emulator with Tencent's limits
// (DescribeBlueprints 10/s, SyncBlueprint 20/s). Once every policy is in
// sync, the controller's passes are watched and the emulator's
// DescribeBlueprints calls per region are counted over whole passes.
//
// The expected cost per pass in a region is Σ⌈ids/100⌉: the copies the
// policies keep there plus the fixed sources in it, 100 ids per call; in a
// source region, plus the lookups of the families' names (up to 100 names per
// call, one call per 100 blueprints they match). One call per policy and
// region (the naive design) is printed beside it. Throttled calls of any
// action over the whole run must be 0.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "blueprintsync/v1/blueprint_sync.grpc.pb.h"
#include "tests/testing_util/emulator_admin.h"

namespace blueprintsync::bench {
namespace {

constexpr int kPolicies = 200;
constexpr int kPassesMeasured = 5;
constexpr int kPerCall = 100;  // ids per DescribeBlueprints call; names per filter
const std::vector<std::string> kMainland = {"ap-beijing", "ap-chengdu", "ap-guangzhou",
                                            "ap-nanjing", "ap-shanghai"};
const std::vector<std::string> kOverseas = {"ap-bangkok", "ap-hongkong",      "ap-jakarta",
                                            "ap-seoul",   "ap-singapore",     "ap-tokyo",
                                            "eu-frankfurt", "na-ashburn", "na-siliconvalley",
                                            "sa-saopaulo"};

int Ceil(int n) { return (n + kPerCall - 1) / kPerCall; }

struct PlannedPolicy {
  std::string id;
  v1::SyncPolicy spec;
  bool family = false;
};

// 3 policies in 10 on the mainland side (4 destinations: the other
// regions), the rest overseas (9 destinations, or 5 for every third one).
// On each side the sources rotate over its regions, and families and fixed
// ids alternate from one round of regions to the next, so every region is
// the source of both kinds.
std::vector<PlannedPolicy> Plan() {
  std::vector<PlannedPolicy> out;
  int mainland_n = 0, overseas_n = 0;
  for (int i = 0; i < kPolicies; ++i) {
    const bool mainland = i % 10 < 3;
    const std::vector<std::string>& side = mainland ? kMainland : kOverseas;
    const int n = mainland ? mainland_n++ : overseas_n++;
    const int size = static_cast<int>(side.size());
    const int source = n % size;
    PlannedPolicy p;
    p.id = absl::StrFormat("bench-%03d", i);
    p.family = (n / size + source) % 2 == 0;
    p.spec.set_source_region(side[source]);
    const int wanted = mainland ? 4 : (n % 3 == 0 ? 5 : 9);
    for (int k = 1; k <= wanted; ++k) p.spec.add_destination_regions(side[(source + k) % size]);
    if (p.family) {
      p.spec.set_blueprint_name(absl::StrFormat("bench-family-%03d", i));
    } else {
      p.spec.set_blueprint_id(absl::StrFormat("lhbp-bfx%05d", i));
    }
    p.spec.set_keep_versions(1);
    out.push_back(std::move(p));
  }
  return out;
}

std::string SeedJson(const std::vector<PlannedPolicy>& plan) {
  std::string body = "{\"blueprints\":[";
  bool first = true;
  auto add = [&](const std::string& region, const std::string& id, const std::string& name,
                 const std::string& created) {
    absl::StrAppend(&body, first ? "" : ",", "{\"Region\":\"", region, "\",\"BlueprintId\":\"",
                    id, "\",\"BlueprintName\":\"", name, "\",\"CreatedTime\":\"", created, "\"}");
    first = false;
  };
  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedPolicy& p = plan[i];
    if (p.family) {
      // Two versions: the lookup finds both, the newest is copied.
      add(p.spec.source_region(), absl::StrFormat("lhbp-bfo%05d", i), p.spec.blueprint_name(),
          "2024-01-15T08:00:00Z");
      add(p.spec.source_region(), absl::StrFormat("lhbp-bfn%05d", i), p.spec.blueprint_name(),
          "2024-06-15T08:00:00Z");
    } else {
      add(p.spec.source_region(), p.spec.blueprint_id(), absl::StrCat("bench-fixed-", i),
          "2024-06-15T08:00:00Z");
    }
  }
  body += "]}";
  return body;
}

// Per region: what one pass should cost.
struct Expected {
  int copies = 0;          // copies the policies keep (keep_versions 1: one per policy)
  int fixed_sources = 0;   // fixed source ids in the region
  int family_names = 0;    // families whose source region it is
  int family_blueprints = 0;
  int naive = 0;           // one call per policy that involves the region
  int Calls() const {
    const int id_calls = Ceil(copies + fixed_sources);
    const int name_calls = family_names == 0 ? 0 : Ceil(family_blueprints);
    return id_calls + name_calls;
  }
};

std::map<std::string, Expected> ExpectedCost(const std::vector<PlannedPolicy>& plan) {
  std::map<std::string, Expected> out;
  for (const std::string& r : kMainland) out[r];
  for (const std::string& r : kOverseas) out[r];
  for (const PlannedPolicy& p : plan) {
    Expected& src = out[p.spec.source_region()];
    ++src.naive;
    if (p.family) {
      ++src.family_names;
      src.family_blueprints += 2;
    } else {
      ++src.fixed_sources;
    }
    for (const std::string& d : p.spec.destination_regions()) {
      ++out[d].copies;
      ++out[d].naive;
    }
  }
  return out;
}

std::shared_ptr<grpc::Channel> Channel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// How many policies are in sync (ListSyncPolicies, following tokens); -1 on error.
int InSyncCount(v1::BlueprintSync::Stub& stub) {
  v1::ListSyncPoliciesRequest req;
  req.set_page_size(1000);
  req.set_filter("in_sync = true");
  int n = 0;
  for (int page = 0; page < 100; ++page) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::ListSyncPoliciesResponse resp;
    if (!stub.ListSyncPolicies(&ctx, req, &resp).ok()) return -1;
    n += resp.sync_policies_size();
    if (resp.next_page_token().empty()) return n;
    req.set_page_token(resp.next_page_token());
  }
  return -1;
}

// The reconcile_time of `name`, in Unix ms; -1 on error.
int64_t ReconcileMs(v1::BlueprintSync::Stub& stub, const std::string& name) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::GetSyncPolicyRequest req;
  req.set_name(name);
  v1::SyncPolicy p;
  if (!stub.GetSyncPolicy(&ctx, req, &p).ok()) return -1;
  return p.reconcile_time().seconds() * 1000 + p.reconcile_time().nanos() / 1000000;
}

// Waits until `name` has been reconciled `passes` more times; the times seen.
std::vector<int64_t> WaitPasses(v1::BlueprintSync::Stub& stub, const std::string& name,
                                int passes, absl::Duration timeout) {
  std::vector<int64_t> seen = {ReconcileMs(stub, name)};
  const absl::Time end = absl::Now() + timeout;
  while (static_cast<int>(seen.size()) <= passes && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(50));
    const int64_t t = ReconcileMs(stub, name);
    if (t > seen.back()) seen.push_back(t);
  }
  return seen;
}

int Main() {
  TempDir dir("bps-bench-policy");
  const std::vector<PlannedPolicy> plan = Plan();
  // Tencent's limits (the emulator's defaults); copies take 2 s.
  auto emulator = StartEmulator({"--sync-duration-ms", "2000"}, dir.path());
  if (!emulator.ok()) {
    std::fprintf(stderr, "emulator: %s\n", std::string(emulator.status().message()).c_str());
    return 1;
  }
  testing::EmulatorAdmin admin(emulator->url);
  if (absl::Status s = admin.PutBlueprints(SeedJson(plan)); !s.ok()) {
    std::fprintf(stderr, "seed: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  // Long enough for a pass at 10 DescribeBlueprints/s (about 40 calls).
  const std::string interval = "10s";
  auto server = StartServer(emulator->url, "sqlite:" + dir.path() + "/jobs.db",
                            {"--policy-interval=" + interval, "--poll-interval=2s"}, dir.path());
  if (!server.ok()) {
    std::fprintf(stderr, "server: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  auto stub = v1::BlueprintSync::NewStub(Channel(server->address));

  const absl::Time created_at = absl::Now();
  for (const PlannedPolicy& p : plan) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::CreateSyncPolicyRequest req;
    req.set_sync_policy_id(p.id);
    *req.mutable_sync_policy() = p.spec;
    v1::SyncPolicy out;
    grpc::Status s = stub->CreateSyncPolicy(&ctx, req, &out);
    if (!s.ok()) {
      std::fprintf(stderr, "CreateSyncPolicy %s: %s\n", p.id.c_str(), s.error_message().c_str());
      return 1;
    }
  }
  int in_sync = 0;
  const absl::Time converge_end = absl::Now() + absl::Minutes(10);
  while ((in_sync = InSyncCount(*stub)) < kPolicies && absl::Now() < converge_end) {
    absl::SleepFor(absl::Seconds(1));
  }
  const absl::Duration converged = absl::Now() - created_at;
  std::fprintf(stderr, "%d/%d policies in sync after %s\n", in_sync, kPolicies,
               absl::FormatDuration(absl::Trunc(converged, absl::Milliseconds(1))).c_str());
  if (in_sync < kPolicies) return 1;
  auto during_convergence = admin.Stats();
  if (!during_convergence.ok()) return 1;

  // Whole passes only: start counting right after one ended.
  const std::string witness = "syncPolicies/" + plan.back().id;
  if (WaitPasses(*stub, witness, 1, absl::Minutes(2)).size() < 2) {
    std::fprintf(stderr, "no pass ended\n");
    return 1;
  }
  if (absl::Status s = admin.ResetStats(); !s.ok()) return 1;
  const std::vector<int64_t> passes =
      WaitPasses(*stub, witness, kPassesMeasured, absl::Minutes(5));
  auto stats = admin.Stats();
  if (!stats.ok() || static_cast<int>(passes.size()) <= kPassesMeasured) {
    std::fprintf(stderr, "fewer passes than asked: %zu\n", passes.size() - 1);
    return 1;
  }
  const double pass_gap_s = (passes.back() - passes.front()) / 1000.0 / kPassesMeasured;

  const std::map<std::string, Expected> expected = ExpectedCost(plan);
  int expected_total = 0, naive_total = 0, copies_total = 0;
  double measured_total = 0;
  bool all_regions_match = true;
  std::printf("\n%-17s %-8s %7s %6s %9s %9s %8s %11s %6s\n", "region", "side", "copies",
              "fixed", "families", "expected", "measured", "naive", "match");
  for (const auto& [region, e] : expected) {
    const bool mainland =
        std::find(kMainland.begin(), kMainland.end(), region) != kMainland.end();
    const double measured =
        static_cast<double>(stats->DescribeCalls(region)) / kPassesMeasured;
    const bool match = std::fabs(measured - e.Calls()) < 1e-9;
    all_regions_match &= match;
    expected_total += e.Calls();
    naive_total += e.naive;
    copies_total += e.copies;
    measured_total += measured;
    std::printf("%-17s %-8s %7d %6d %9d %9d %8.2f %11d %6s\n", region.c_str(),
                mainland ? "mainland" : "overseas", e.copies, e.fixed_sources, e.family_names,
                e.Calls(), measured, e.naive, match ? "yes" : "NO");
  }
  std::printf("%-17s %-8s %7d %6s %9s %9d %8.2f %11d\n\n", "total", "", copies_total, "", "",
              expected_total, measured_total, naive_total);

  int64_t throttled = 0;
  for (const auto* s : {&*during_convergence, &*stats}) {
    for (const auto& [action, a] : s->actions) throttled += a.throttled;
  }
  PrintRow({absl::StrCat("Policies: ", kPolicies, " over 15 regions (", copies_total,
                         " copies): DescribeBlueprints calls per pass"),
            absl::StrCat(Fixed(measured_total, 2), " (", kPassesMeasured, " passes; every region ",
                         all_regions_match ? "as expected" : "NOT as expected", ")"),
            absl::StrCat("sum ceil(ids/100) + name lookups = ", expected_total),
            Fixed(measured_total / expected_total, 2), "= expected, per region",
            MetText(all_regions_match)});
  PrintRow({"  naive: one call per policy and region", absl::StrCat(naive_total),
            absl::StrCat("measured ", Fixed(measured_total, 2)),
            Fixed(naive_total / measured_total, 1), "", ""});
  PrintRow({"  throttled calls, any action, whole run", absl::StrCat(throttled), "", "", "0",
            MetText(throttled == 0)});
  PrintRow({absl::StrCat("  time to bring ", kPolicies, " new policies in sync"),
            absl::FormatDuration(absl::Trunc(converged, absl::Milliseconds(100))),
            absl::StrCat(during_convergence->Action("SyncBlueprint").executed,
                         " SyncBlueprint executed"),
            "", "", ""});
  PrintRow({"  pass period (reconcile_time of one policy)", absl::StrCat(Fixed(pass_gap_s, 2), " s"),
            absl::StrCat("--policy-interval ", interval), "", "", ""});
  server->child->Stop(absl::Seconds(20));
  emulator->child->Stop(absl::Seconds(5));
  return all_regions_match && throttled == 0 ? 0 : 1;
}

}  // namespace
}  // namespace blueprintsync::bench

int main() { return blueprintsync::bench::Main(); }
