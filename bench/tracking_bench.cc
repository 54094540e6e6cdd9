// Tracking cost, in process: a JobEngine on a memory store
// holding 10,000 destinations still SYNCING, spread over the 15 SyncBlueprint
// regions, polled through a counting fake LighthouseClient. Measured per
// cycle (JobEngine::PollOnceForTest, on this thread, so the thread's CPU
// clock holds all of it): DescribeBlueprints calls against Σ⌈n_region/100⌉,
// and CPU time. The fake answers each call by decoding a realistic
// DescribeBlueprints JSON body with the service's own decoder, so the CPU
// figure is the service's work per cycle minus the HTTP exchange.
//
// Beside it, the naive design: one call per destination, the same fake and
// decoder, over the same 10,000 ids.
//
// Then detection latency, with real processes: blueprint-syncd with its
// default tracking flags on SQLite, against the emulator (copies taking
// 2-5 s, at random; Tencent's rate limits enforced). Time from the moment the emulator made a copy
// NORMAL (its SettledAtUnixMs) to the moment a WatchSyncJob stream over gRPC delivered the job
// SUCCEEDED, for one-copy jobs submitted in rounds of 10 with a random pause between rounds (so
// copies land at every phase of the tracker's cycle), with 10 pending destinations and with 990
// more kept SYNCING beside them (1,000 pending). The reference is the same run with the fixed 10 s
// interval of before (--min-poll-interval 10s).
#include <time.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "bench/grpc_load.h"
#include "blueprintsync/v1/blueprint_sync.grpc.pb.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "service/jobs/job_engine.h"
#include "service/jobs/job_state.h"
#include "service/tencent/credentials.h"
#include "service/tencent/http_transport.h"
#include "service/tencent/lighthouse_json.h"
#include "service/tencent/regions.h"
#include "service/tencent/testing/fake_lighthouse_client.h"
#include "tests/testing_util/emulator_admin.h"

namespace blueprintsync::bench {
namespace {

constexpr int kDestinationsPerJob = 4;
constexpr int kJobs = 2500;  // x 4 = 10,000 destinations
constexpr int kCycles = 20;
constexpr double kDescribeRate = 10;  // the service's default --describe-rate

double ThreadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// A DescribeBlueprints answer as Tencent sends it (every documented field of
// a private blueprint), for the ids asked.
std::string DescribeBody(const std::string& region, const std::vector<std::string>& ids) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto str = [&w](const char* k, const std::string& v) {
    w.Key(k);
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  };
  w.StartObject();
  w.Key("Response");
  w.StartObject();
  w.Key("TotalCount");
  w.Int64(static_cast<int64_t>(ids.size()));
  w.Key("BlueprintSet");
  w.StartArray();
  for (const std::string& id : ids) {
    w.StartObject();
    str("BlueprintId", id);
    str("DisplayTitle", "web-base");
    str("DisplayVersion", "");
    str("Description", "synced by blueprint-sync");
    str("OsName", "TencentOS Server 3.1 (TK4)");
    str("Platform", "TencentOS");
    str("PlatformType", "LINUX_UNIX");
    str("BlueprintType", "PRIVATE");
    str("ImageUrl", "");
    w.Key("RequiredSystemDiskSize");
    w.Int64(40);
    str("BlueprintState", "SYNCING");
    str("CreatedTime", "2026-11-27T22:00:00Z");
    str("BlueprintName", "web-base");
    w.Key("SupportAutomationTools");
    w.Bool(true);
    w.Key("RequiredMemorySize");
    w.Int64(1);
    str("ImageId", "img-" + id.substr(5));
    str("CommunityUrl", "");
    str("GuideUrl", "");
    w.Key("SceneIdSet");
    w.StartArray();
    w.EndArray();
    str("DockerVersion", "");
    w.Key("BlueprintShared");
    w.Bool(false);
    w.Key("Tags");
    w.StartArray();
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  str("RequestId", "6ef60bec-0242-43af-bb20-270359fb54a7");
  w.EndObject();
  w.EndObject();
  (void)region;
  return std::string(buf.GetString(), buf.GetSize());
}

// DescribeBlueprints answers from bodies built on first sight of a request
// (so a steady-state cycle pays for decoding only, as the real client would
// after its HTTP exchange). Plugged into the shared fake as its describe hook.
class DecodedBodies {
 public:
  absl::StatusOr<tencent::DescribeBlueprintsResponse> Answer(
      const tencent::DescribeBlueprintsRequest& request) {
    const std::string key = absl::StrCat(request.region, "/", request.blueprint_ids.front(), "/",
                                         request.blueprint_ids.size());
    const std::string* body;
    {
      absl::MutexLock lock(&mu_);
      auto it = bodies_.find(key);
      if (it == bodies_.end()) {
        it = bodies_.emplace(key, DescribeBody(request.region, request.blueprint_ids)).first;
      }
      body = &it->second;  // std::map nodes are stable
    }
    return tencent::json::DecodeDescribeBlueprints(*body);
  }
  // Thread CPU to decode every body once: the decoding share of a cycle.
  double DecodeAllCpuMs() {
    absl::MutexLock lock(&mu_);
    const double c0 = ThreadCpuMs();
    for (const auto& [key, body] : bodies_) {
      if (!tencent::json::DecodeDescribeBlueprints(body).ok()) std::abort();
    }
    return ThreadCpuMs() - c0;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::string> bodies_ ABSL_GUARDED_BY(mu_);
};

// The shared fake, counting calls only (copying each 100-id request would
// be measured as the engine's CPU), answering from `bodies`.
std::unique_ptr<testing::FakeLighthouseClient> CountingFakeClient(DecodedBodies* bodies) {
  testing::FakeLighthouseClient::Options options;
  options.record_calls = false;
  auto client = std::make_unique<testing::FakeLighthouseClient>(options);
  client->SetDescribeHook([bodies](const tencent::DescribeBlueprintsRequest& request) {
    return std::make_optional(bodies->Answer(request));
  });
  return client;
}

// Client-side CPU of one real DescribeBlueprints call (sign, HTTP on a
// kept-alive connection, decode of a one-blueprint answer) against the
// emulator, averaged over `n` calls: what every extra call costs the service
// beyond the per-blueprint work.
absl::StatusOr<double> PerCallClientCpuUs(int n) {
  TempDir dir("bps-bench-tracking");
  auto emulator = StartEmulator({"--rate-limit", "DescribeBlueprints=0"}, dir.path());
  if (!emulator.ok()) return emulator.status();
  tencent::LighthouseClientOptions options;
  options.endpoint = emulator->url;
  auto client = tencent::MakeLighthouseHttpClient(
      options,
      std::make_shared<tencent::StaticCredentialProvider>(
          tencent::Credentials{kSecretId, kSecretKey, "", absl::InfiniteFuture()}),
      tencent::MakeCurlTransport(), SystemClock::Default());
  tencent::DescribeBlueprintsRequest q;
  q.region = "ap-singapore";
  q.blueprint_ids = {"lhbp-sgbase01"};  // in the emulator's built-in seed
  q.limit = tencent::kMaxDescribeIds;
  for (int i = 0; i < 20; ++i) {  // warm-up, and the connection
    auto r = client->DescribeBlueprints(q, {});
    if (!r.ok()) return r.status();
    if (r->blueprints.size() != 1) return absl::InternalError("lhbp-sgbase01 not found");
  }
  const double c0 = ThreadCpuMs();
  for (int i = 0; i < n; ++i) {
    auto r = client->DescribeBlueprints(q, {});
    if (!r.ok()) return r.status();
  }
  const double us = (ThreadCpuMs() - c0) * 1000 / n;
  emulator->child->Stop(absl::Seconds(5));
  return us;
}

// --- Detection latency (real processes) ---

constexpr const char* kLatencySource = "ap-singapore";
// The 9 other overseas SyncBlueprint regions.
constexpr const char* kLatencyRegions[] = {"ap-bangkok", "ap-hongkong",      "ap-jakarta",
                                           "ap-seoul",   "ap-tokyo",         "eu-frankfurt",
                                           "na-ashburn", "na-siliconvalley", "sa-saopaulo"};
constexpr int kLatencyRegionCount = 9;
constexpr int kRoundJobs = 10;
constexpr int kSyncMs = 3000;

struct Detection {
  std::vector<double> latency_s;
  int64_t describe_throttled = 0;
  int64_t sync_throttled = 0;
  int64_t describe_max_per_second = 0;
  double describe_per_second = 0;  // over the measured rounds
  int64_t calls_per_cycle = 0;     // sum ceil(n_region/100) while measuring
};

std::string LatencySourceId(const std::string& prefix, int i) {
  return absl::StrFormat("lhbp-%s%06d", prefix, i);  // 2 + 6 characters
}

absl::Status SeedLatencySources(const testing::EmulatorAdmin& admin, const std::string& prefix,
                                int count) {
  std::string body = "{\"blueprints\":[";
  for (int i = 0; i < count; ++i) {
    absl::StrAppend(&body, i == 0 ? "" : ",", "{\"Region\":\"", kLatencySource,
                    "\",\"BlueprintId\":\"", LatencySourceId(prefix, i),
                    "\",\"BlueprintName\":\"bench-", prefix, i,
                    "\",\"BlueprintState\":\"NORMAL\"}");
  }
  body += "]}";
  return admin.PutBlueprints(body);
}

absl::StatusOr<v1::SyncJob> SubmitThroughService(v1::BlueprintSync::Stub& stub,
                                                 const std::string& source,
                                                 const std::vector<std::string>& regions) {
  v1::SyncBlueprintRequest req;
  req.set_source_region(kLatencySource);
  req.set_blueprint_id(source);
  for (const auto& r : regions) req.add_destination_regions(r);
  std::string uuid = jobs::NewJobName();
  req.set_request_id(uuid.substr(uuid.find('/') + 1));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::SyncJob job;
  grpc::Status s = stub.SyncBlueprint(&ctx, req, &job);
  if (!s.ok()) return absl::InternalError(absl::StrCat("SyncBlueprint: ", s.error_message()));
  if (job.state() != v1::SyncJob::RUNNING) {
    return absl::InternalError(absl::StrCat("SyncBlueprint answered ", job.ShortDebugString()));
  }
  return job;
}

// Watches `name` until it ends; the time it was seen SUCCEEDED, or
// InfiniteFuture if it ended otherwise.
absl::Time WatchUntilSucceeded(v1::BlueprintSync::Stub& stub, const std::string& name) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  v1::WatchSyncJobRequest req;
  req.set_name(name);
  auto reader = stub.WatchSyncJob(&ctx, req);
  v1::SyncJob seen;
  absl::Time at = absl::InfiniteFuture();
  while (reader->Read(&seen)) {
    if (seen.state() == v1::SyncJob::SUCCEEDED) {
      at = absl::Now();
      break;
    }
    if (seen.state() == v1::SyncJob::FAILED) break;
  }
  ctx.TryCancel();
  reader->Finish();
  return at;
}

// One server run: `background` copies kept SYNCING (one job per source to
// all 9 regions), then `rounds` rounds of 10 one-copy jobs measured.
absl::StatusOr<Detection> MeasureDetection(int background, int rounds,
                                           const std::vector<std::string>& server_args,
                                           uint32_t seed) {
  TempDir dir("bps-bench-detection");
  auto emulator = StartEmulator({"--sync-duration-ms", absl::StrCat(kSyncMs)}, dir.path());
  if (!emulator.ok()) return emulator.status();
  testing::EmulatorAdmin admin(emulator->url);
  const int background_jobs = background / kLatencyRegionCount;
  if (auto s = SeedLatencySources(admin, "bg", background_jobs); !s.ok()) return s;
  if (auto s = SeedLatencySources(admin, "ms", rounds * kRoundJobs); !s.ok()) return s;
  auto server =
      StartServer(emulator->url, "sqlite:" + dir.path() + "/jobs.db", server_args, dir.path());
  if (!server.ok()) return server.status();
  auto stub = v1::BlueprintSync::NewStub(MakeChannel(server->address));

  std::vector<std::string> all_regions(std::begin(kLatencyRegions), std::end(kLatencyRegions));
  if (background_jobs > 0) {
    // These copies stay SYNCING for the whole run.
    if (auto s = admin.UpdateConfig("{\"sync_duration_ms\":3600000}"); !s.ok()) return s;
    for (int i = 0; i < background_jobs; ++i) {
      auto job = SubmitThroughService(*stub, LatencySourceId("bg", i), all_regions);
      if (!job.ok()) return job.status();
    }
    if (auto s = admin.UpdateConfig(absl::StrCat("{\"sync_duration_ms\":", kSyncMs, "}"));
        !s.ok()) {
      return s;
    }
  }
  std::map<std::string, int> pending_per_region;
  for (const auto& r : all_regions) pending_per_region[r] = background_jobs;
  for (int j = 0; j < kRoundJobs; ++j) ++pending_per_region[kLatencyRegions[j % 9]];
  Detection out;
  for (const auto& [region, n] : pending_per_region) {
    out.calls_per_cycle += (n + tencent::kMaxDescribeIds - 1) / tencent::kMaxDescribeIds;
  }

  auto before = admin.Stats();
  if (!before.ok()) return before.status();
  const absl::Time t0 = absl::Now();
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> pause_ms(0, 4000);
  // Each copy takes 2-5 s: real syncs vary, and a fixed duration would tie
  // every copy's landing to the cycle that the round's first submission woke.
  std::uniform_int_distribution<int> sync_ms(2000, 5000);
  std::map<std::string, absl::Time> seen_at;  // copy id -> watcher saw SUCCEEDED
  for (int r = 0; r < rounds; ++r) {
    absl::SleepFor(absl::Milliseconds(pause_ms(rng)));
    std::vector<v1::SyncJob> jobs;
    for (int j = 0; j < kRoundJobs; ++j) {
      if (auto s = admin.UpdateConfig(absl::StrCat("{\"sync_duration_ms\":", sync_ms(rng), "}"));
          !s.ok()) {
        return s;
      }
      auto job = SubmitThroughService(*stub, LatencySourceId("ms", r * kRoundJobs + j),
                                      {kLatencyRegions[j % 9]});
      if (!job.ok()) return job.status();
      jobs.push_back(*std::move(job));
    }
    std::vector<absl::Time> seen(jobs.size());
    std::vector<std::thread> watchers;
    for (size_t j = 0; j < jobs.size(); ++j) {
      watchers.emplace_back([&, j] { seen[j] = WatchUntilSucceeded(*stub, jobs[j].name()); });
    }
    for (auto& w : watchers) w.join();
    for (size_t j = 0; j < jobs.size(); ++j) {
      if (seen[j] == absl::InfiniteFuture()) {
        return absl::InternalError(absl::StrCat(jobs[j].name(), " did not succeed"));
      }
      seen_at[jobs[j].destinations(0).blueprint_id()] = seen[j];
    }
  }
  const double measured_s = absl::ToDoubleSeconds(absl::Now() - t0);
  auto upstream = admin.Blueprints("");
  if (!upstream.ok()) return upstream.status();
  for (const auto& b : *upstream) {
    auto it = seen_at.find(b.id);
    if (it == seen_at.end()) continue;
    if (b.settled_at_ms == 0) return absl::InternalError(absl::StrCat(b.id, " never settled"));
    out.latency_s.push_back(
        absl::ToDoubleSeconds(it->second - absl::FromUnixMillis(b.settled_at_ms)));
  }
  if (out.latency_s.size() != seen_at.size()) {
    return absl::InternalError("some measured copies are missing upstream");
  }
  auto after = admin.Stats();
  if (!after.ok()) return after.status();
  out.describe_throttled = after->Action("DescribeBlueprints").throttled;
  out.sync_throttled = after->Action("SyncBlueprint").throttled;
  out.describe_max_per_second = after->MaxAcceptedPerSecond("DescribeBlueprints");
  out.describe_per_second = static_cast<double>(after->Action("DescribeBlueprints").executed -
                                                before->Action("DescribeBlueprints").executed) /
                            measured_s;
  server->child->Stop(absl::Seconds(30));
  emulator->child->Stop(absl::Seconds(5));
  return out;
}

std::string Seconds(double s) { return absl::StrCat(Fixed(s, 2), " s"); }

// Rows for one pending size; `target_p50`/`target_p99` <= 0: none.
bool PrintDetectionRows(const std::string& label, const Detection& now, const Detection& before,
                        double target_p50, double target_p99, const std::string& target_text) {
  const double p50 = Median(now.latency_s);
  const double p99 = Percentile(now.latency_s, 99);
  const double before_p50 = Median(before.latency_s);
  const double before_p99 = Percentile(before.latency_s, 99);
  const bool zero = now.describe_throttled == 0 && now.sync_throttled == 0;
  bool met = zero;
  if (target_p50 > 0) met = met && p50 <= target_p50;
  if (target_p99 > 0) met = met && p99 <= target_p99;
  PrintRow({absl::StrCat("Detection latency, ", label,
                         ": copy NORMAL upstream -> watcher sees SUCCEEDED, p50 / p99 (",
                         now.latency_s.size(), " copies)"),
            absl::StrCat(Seconds(p50), " / ", Seconds(p99)),
            absl::StrCat("fixed 10 s interval: ", Seconds(before_p50), " / ", Seconds(before_p99)),
            Fixed(before_p50 > 0 ? p50 / before_p50 : 0, 2), target_text, MetText(met)});
  PrintRow({absl::StrCat("  ", label,
                         ": throttles (DescribeBlueprints + SyncBlueprint); "
                         "DescribeBlueprints/s while measuring (max in 1 s)"),
            absl::StrCat(now.describe_throttled + now.sync_throttled, "; ",
                         Fixed(now.describe_per_second, 1), "/s (max ", now.describe_max_per_second,
                         ")"),
            absl::StrCat(now.calls_per_cycle, " calls per cycle"), "", "0 throttles",
            MetText(zero)});
  return met;
}

int DetectionLatency() {
  const std::vector<std::string> adaptive = {};  // the defaults
  const std::vector<std::string> fixed = {"--min-poll-interval", "10s"};
  constexpr double kShare = 0.5;  // --poll-budget-share default
  auto small = MeasureDetection(0, 8, adaptive, 1);
  if (!small.ok()) {
    std::fprintf(stderr, "detection, 10 pending: %s\n",
                 std::string(small.status().message()).c_str());
    return 1;
  }
  auto small_before = MeasureDetection(0, 3, fixed, 2);
  if (!small_before.ok()) {
    std::fprintf(stderr, "detection, 10 pending, fixed: %s\n",
                 std::string(small_before.status().message()).c_str());
    return 1;
  }
  auto large = MeasureDetection(1000 - kRoundJobs, 8, adaptive, 3);
  if (!large.ok()) {
    std::fprintf(stderr, "detection, 1,000 pending: %s\n",
                 std::string(large.status().message()).c_str());
    return 1;
  }
  auto large_before = MeasureDetection(1000 - kRoundJobs, 3, fixed, 4);
  if (!large_before.ok()) {
    std::fprintf(stderr, "detection, 1,000 pending, fixed: %s\n",
                 std::string(large_before.status().message()).c_str());
    return 1;
  }
  PrintDetectionRows("10 pending / 9 regions", *small, *small_before, 1.5, 0,
                     "p50 <= 1.5 s; 0 throttles");
  // One batched cycle at the tracker's budget: its calls at share x rate.
  const double cycle_s = static_cast<double>(large->calls_per_cycle) / (kShare * kDescribeRate);
  PrintDetectionRows(
      "1,000 pending / 9 regions", *large, *large_before, 0, cycle_s,
      absl::StrCat("p99 <= one cycle at the budget (", large->calls_per_cycle, " calls at ",
                   Fixed(kShare * kDescribeRate, 0), "/s = ", Seconds(cycle_s), "); 0 throttles"));
  return 0;
}

int Main() {
  // Jobs: one third from a mainland source to the 4 other mainland regions,
  // two thirds from an overseas source to 4 of the other 10 overseas ones.
  std::vector<std::string> mainland, overseas;
  for (const auto& r : tencent::SyncRegions()) {
    (r.china_mainland ? mainland : overseas).emplace_back(r.id);
  }
  auto store = jobs::MakeMemoryJobStore();
  std::map<std::string, int> per_region;
  std::vector<std::pair<std::string, std::string>> all_destinations;  // (region, id)
  const absl::Time now = absl::Now();
  int next_id = 0;
  for (int j = 0; j < kJobs; ++j) {
    const bool in_mainland = j % 3 == 0;
    const std::vector<std::string>& group = in_mainland ? mainland : overseas;
    const size_t src = static_cast<size_t>(j / 3) % group.size();
    jobs::JobRecord rec;
    v1::SyncJob* job = rec.mutable_job();
    job->set_name(jobs::NewJobName());
    job->set_state(v1::SyncJob::RUNNING);
    job->set_source_region(group[src]);
    job->set_blueprint_id(absl::StrFormat("lhbp-s%07d", j));
    for (size_t k = 1; k <= static_cast<size_t>(kDestinationsPerJob); ++k) {
      // Overseas jobs alternate between two windows of destinations (k + 0 or
      // k + 1 after the source, never the source itself: 10 regions).
      const size_t shift = in_mainland ? 0 : static_cast<size_t>(j % 2);
      const std::string& region = group[(src + k + shift) % group.size()];
      v1::Destination* d = job->add_destinations();
      d->set_region(region);
      d->set_blueprint_id(absl::StrFormat("lhbp-d%07d", next_id++));
      d->set_state(v1::Destination::SYNCING);
      d->set_blueprint_state("SYNCING");
      *d->mutable_update_time() = jobs::ToProto(now);
      ++per_region[region];
      all_destinations.emplace_back(region, d->blueprint_id());
    }
    *job->mutable_create_time() = jobs::ToProto(now);
    *job->mutable_update_time() = jobs::ToProto(now);
    *job->mutable_submit_time() = jobs::ToProto(now);
    *job->mutable_deadline() = jobs::ToProto(now + absl::Hours(6));
    rec.set_phase(jobs::JobRecord::SUBMITTED);
    rec.set_submit_attempts(1);
    if (auto s = store->CreateJob(rec); !s.ok()) {
      std::fprintf(stderr, "CreateJob: %s\n", std::string(s.status().message()).c_str());
      return 1;
    }
  }
  int64_t expected_calls = 0;
  for (const auto& [region, n] : per_region) {
    expected_calls += (n + tencent::kMaxDescribeIds - 1) / tencent::kMaxDescribeIds;
    std::fprintf(stderr, "%-18s %d pending\n", region.c_str(), n);
  }
  const int64_t destinations = static_cast<int64_t>(all_destinations.size());

  DecodedBodies bodies;
  auto client = CountingFakeClient(&bodies);
  jobs::JobEngineOptions options;
  options.poll_interval = absl::Hours(1);  // only the cycles this program runs
  options.min_poll_interval = absl::Hours(1);
  jobs::JobEngine engine(options, store.get(), client.get());
  if (absl::Status s = engine.Start(); !s.ok()) {
    std::fprintf(stderr, "Start: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  // Start() runs a first cycle on the tracker thread; it also fills the
  // fake's body cache.
  while (engine.stats().poll_cycles < 1) absl::SleepFor(absl::Milliseconds(5));

  std::vector<double> cpu_ms, wall_ms;
  std::vector<int64_t> calls_per_cycle;
  for (int c = 0; c < kCycles; ++c) {
    const int64_t calls_before = client->describe_count();
    const absl::Time w0 = absl::Now();
    const double c0 = ThreadCpuMs();
    engine.PollOnceForTest();
    cpu_ms.push_back(ThreadCpuMs() - c0);
    wall_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - w0));
    calls_per_cycle.push_back(client->describe_count() - calls_before);
  }
  const jobs::JobEngineStats stats = engine.stats();
  engine.Shutdown(absl::Now() + absl::Seconds(5));
  std::vector<double> decode_ms;
  for (int c = 0; c < 5; ++c) decode_ms.push_back(bodies.DecodeAllCpuMs());

  // Naive: one call per destination, same fake and decoder.
  DecodedBodies naive_bodies;
  auto naive_client = CountingFakeClient(&naive_bodies);
  auto naive_cycle = [&] {
    for (const auto& [region, id] : all_destinations) {
      tencent::DescribeBlueprintsRequest q;
      q.region = region;
      q.blueprint_ids = {id};
      auto r = naive_client->DescribeBlueprints(q, {});
      if (!r.ok() || r->blueprints.size() != 1) std::abort();
    }
  };
  naive_cycle();  // builds the bodies
  double naive_decode_ms = 0;
  {
    std::vector<double> v;
    for (int c = 0; c < 5; ++c) v.push_back(naive_bodies.DecodeAllCpuMs());
    naive_decode_ms = Median(v);
  }
  auto per_call_us = PerCallClientCpuUs(500);
  if (!per_call_us.ok()) {
    std::fprintf(stderr, "per-call cost: %s\n",
                 std::string(per_call_us.status().message()).c_str());
    return 1;
  }

  bool all_equal = true;
  for (int64_t n : calls_per_cycle) all_equal = all_equal && n == expected_calls;
  all_equal = all_equal && stats.last_cycle_describe_calls == expected_calls;
  const double cpu = Median(cpu_ms);
  std::fprintf(stderr, "cycle wall (no pacing, fake client) p50 %.2f ms\n", Median(wall_ms));
  PrintRow({absl::StrCat("Tracking ", destinations, " pending / ", per_region.size(),
                         " regions: DescribeBlueprints calls per cycle"),
            absl::StrCat(calls_per_cycle.front(), " (all ", kCycles, " cycles)"),
            absl::StrCat("sum ceil(n_region/100) = ", expected_calls), "1.00", "= sum ceil(n/100)",
            MetText(all_equal)});
  PrintRow({"  naive one call per destination: calls per cycle", absl::StrCat(destinations),
            absl::StrCat("batched ", expected_calls),
            Fixed(static_cast<double>(destinations) / static_cast<double>(expected_calls), 1), "",
            ""});
  PrintRow({"  cycle length at --describe-rate 10/s (batched / naive)",
            absl::StrCat(Fixed(static_cast<double>(expected_calls) / kDescribeRate, 1), " s / ",
                         Fixed(static_cast<double>(destinations) / kDescribeRate, 0), " s"),
            "poll interval 10 s", "", "", ""});
  const double decode = Median(decode_ms);
  const double engine_only = cpu - decode;
  // A call's fixed client cost without its one-blueprint decode.
  const double fixed_call_ms =
      std::max(0.0, *per_call_us / 1000 - naive_decode_ms / static_cast<double>(destinations));
  const double batched_total = cpu + static_cast<double>(expected_calls) * fixed_call_ms;
  const double naive_total =
      engine_only + naive_decode_ms + static_cast<double>(destinations) * fixed_call_ms;
  PrintRow({"  CPU per poll cycle, in process (engine + JSON decode, no HTTP)",
            absl::StrCat(Fixed(cpu, 1), " ms (engine ", Fixed(engine_only, 1), ", decode ",
                         Fixed(decode, 1), ")"),
            absl::StrCat("naive: decode alone ", Fixed(naive_decode_ms, 1), " ms"), "", "", ""});
  PrintRow(
      {"  CPU per poll cycle incl. signing + HTTP (measured per call)",
       absl::StrCat(Fixed(batched_total, 1), " ms (", Fixed(*per_call_us, 0), " us/call measured)"),
       absl::StrCat("naive ", Fixed(naive_total, 0), " ms"), Fixed(batched_total / naive_total, 3),
       "", ""});
  return DetectionLatency();
}

}  // namespace
}  // namespace blueprintsync::bench

int main() { return blueprintsync::bench::Main(); }
