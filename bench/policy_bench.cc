// What replication policies cost upstream. 200 policies over all 15
// SyncBlueprint regions (families and fixed blueprint ids, on both sides of
// the Chinese-mainland border, 4 or 9 destinations each) are created on a
// real blueprint-syncd against the emulator with Tencent's limits
// (DescribeBlueprints 10/s, SyncBlueprint 20/s). Once every policy is in
// sync, only the controller calls upstream: one burst of DescribeBlueprints
// per pass, the rest of the interval quiet. The emulator's per-region
// counters are read in the quiet between bursts, so each difference is
// exactly one pass.
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
const std::vector<std::string> kOverseas = {
    "ap-bangkok", "ap-hongkong",  "ap-jakarta", "ap-seoul",         "ap-singapore",
    "ap-tokyo",   "eu-frankfurt", "na-ashburn", "na-siliconvalley", "sa-saopaulo"};

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
    absl::StrAppend(&body, first ? "" : ",", "{\"Region\":\"", region, "\",\"BlueprintId\":\"", id,
                    "\",\"BlueprintName\":\"", name, "\",\"CreatedTime\":\"", created, "\"}");
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
  int copies = 0;         // copies the policies keep (keep_versions 1: one per policy)
  int fixed_sources = 0;  // fixed source ids in the region
  int family_names = 0;   // families whose source region it is
  int family_blueprints = 0;
  int naive = 0;  // one call per policy that involves the region
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

// The emulator's DescribeBlueprints counters at one moment.
struct Snapshot {
  absl::Time time;
  std::map<std::string, int64_t> by_region;
  int64_t total = 0;
};

absl::StatusOr<Snapshot> Take(const testing::EmulatorAdmin& admin) {
  auto stats = admin.Stats();
  if (!stats.ok()) return stats.status();
  Snapshot s;
  s.time = absl::Now();
  s.by_region = stats->describe_calls_by_region;
  for (const auto& [region, n] : s.by_region) s.total += n;
  return s;
}

// The controller's passes, seen from upstream: in steady state (no job
// running, nothing to delete) only the controller calls DescribeBlueprints,
// in one burst per pass, paced at --describe-rate, with the rest of the
// interval quiet. Returns a snapshot taken in the quiet before the first
// burst and one after each of `passes` bursts, so consecutive snapshots
// differ by exactly one pass.
absl::StatusOr<std::vector<Snapshot>> WatchPasses(const testing::EmulatorAdmin& admin, int passes,
                                                  absl::Duration quiet, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  std::vector<Snapshot> out;
  absl::StatusOr<Snapshot> last = Take(admin);
  if (!last.ok()) return last.status();
  absl::Time last_change = absl::Now();
  bool in_burst = false;
  while (static_cast<int>(out.size()) <= passes) {
    if (absl::Now() > end) return absl::DeadlineExceededError("the passes did not come");
    absl::SleepFor(absl::Milliseconds(100));
    absl::StatusOr<Snapshot> now = Take(admin);
    if (!now.ok()) return now.status();
    if (now->total != last->total) {
      last_change = now->time;
      if (!out.empty()) in_burst = true;
    } else if (now->time - last_change >= quiet && (out.empty() || in_burst)) {
      out.push_back(*now);  // quiet: between two passes
      in_burst = false;
    }
    last = std::move(now);
  }
  return out;
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

  // Whole passes only, each one apart.
  auto snapshots = WatchPasses(admin, kPassesMeasured, absl::Seconds(2), absl::Minutes(5));
  if (!snapshots.ok()) {
    std::fprintf(stderr, "passes: %s\n", std::string(snapshots.status().message()).c_str());
    return 1;
  }
  auto stats = admin.Stats();
  if (!stats.ok()) return 1;
  const Snapshot& first = snapshots->front();
  const Snapshot& last = snapshots->back();
  const double pass_gap_s =
      absl::ToDoubleSeconds(last.time - first.time) / static_cast<double>(kPassesMeasured);
  std::vector<int64_t> per_pass;
  for (size_t i = 1; i < snapshots->size(); ++i) {
    per_pass.push_back((*snapshots)[i].total - (*snapshots)[i - 1].total);
  }
  const std::map<std::string, Expected> expected = ExpectedCost(plan);
  int expected_total = 0, naive_total = 0, copies_total = 0;
  double measured_total = 0;
  bool all_regions_match = true;
  std::printf("\n%-17s %-8s %7s %6s %9s %9s %8s %11s %6s\n", "region", "side", "copies", "fixed",
              "families", "expected", "measured", "naive", "match");
  for (const auto& [region, e] : expected) {
    const bool mainland = std::find(kMainland.begin(), kMainland.end(), region) != kMainland.end();
    auto count = [&region = region](const Snapshot& snap) {
      auto it = snap.by_region.find(region);
      return it == snap.by_region.end() ? int64_t{0} : it->second;
    };
    const double measured = static_cast<double>(count(last) - count(first)) / kPassesMeasured;
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

  // The emulator's counters were never reset: the whole run.
  int64_t throttled = 0;
  for (const auto& [action, a] : stats->actions) throttled += a.throttled;
  std::string passes_text;
  bool every_pass = true;
  for (int64_t n : per_pass) {
    absl::StrAppend(&passes_text, passes_text.empty() ? "" : ", ", n);
    every_pass &= n == expected_total;
  }
  PrintRow({absl::StrCat("Policies: ", kPolicies, " over 15 regions (", copies_total,
                         " copies): DescribeBlueprints calls per pass"),
            absl::StrCat(Fixed(measured_total, 2), " (passes: ", passes_text, "; every region ",
                         all_regions_match ? "as expected" : "NOT as expected", ")"),
            absl::StrCat("sum ceil(ids/100) + name lookups = ", expected_total),
            Fixed(measured_total / expected_total, 2), "= expected, per region and pass",
            MetText(all_regions_match && every_pass)});
  PrintRow({"  naive: one call per policy and region", absl::StrCat(naive_total),
            absl::StrCat("measured ", Fixed(measured_total, 2)),
            Fixed(naive_total / measured_total, 1), "", ""});
  const int64_t max_describe = stats->MaxAcceptedPerSecond("DescribeBlueprints");
  const int64_t max_sync = stats->MaxAcceptedPerSecond("SyncBlueprint");
  PrintRow({"  throttled calls, any action, whole run", absl::StrCat(throttled), "", "", "0",
            MetText(throttled == 0)});
  PrintRow({"  most accepted in any 1 s: DescribeBlueprints / SyncBlueprint",
            absl::StrCat(max_describe, " / ", max_sync), "Tencent's limits 10 / 20", "",
            "<= 10 / <= 20", MetText(max_describe <= 10 && max_sync <= 20)});
  PrintRow({absl::StrCat("  time to bring ", kPolicies, " new policies in sync"),
            absl::FormatDuration(absl::Trunc(converged, absl::Milliseconds(100))), "", "", "", ""});
  // One job, so one SyncBlueprint, per policy: each has one source and
  // starts in a store where no copy exists.
  const int64_t executed = during_convergence->Action("SyncBlueprint").executed;
  PrintRow({"  SyncBlueprint executed while they converged", absl::StrCat(executed),
            absl::StrCat("one per policy: ", kPolicies), "", absl::StrCat("= ", kPolicies),
            MetText(executed == kPolicies)});
  PrintRow({"  pass period (between bursts of calls upstream)",
            absl::StrCat(Fixed(pass_gap_s, 2), " s"), absl::StrCat("--policy-interval ", interval),
            "", "", ""});
  server->child->Stop(absl::Seconds(20));
  emulator->child->Stop(absl::Seconds(5));
  return all_regions_match && every_pass && throttled == 0 && executed == kPolicies ? 0 : 1;
}

}  // namespace
}  // namespace blueprintsync::bench

int main() { return blueprintsync::bench::Main(); }
