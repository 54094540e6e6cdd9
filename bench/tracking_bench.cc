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
#include <time.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"
#include "service/jobs/job_engine.h"
#include "service/jobs/job_state.h"
#include "service/tencent/credentials.h"
#include "service/tencent/http_transport.h"
#include "service/tencent/lighthouse_json.h"
#include "service/tencent/regions.h"
#include "service/tencent/testing/fake_lighthouse_client.h"

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
  return 0;
}

}  // namespace
}  // namespace blueprintsync::bench

int main() { return blueprintsync::bench::Main(); }
