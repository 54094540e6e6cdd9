// Signing cost: the full TC3-HMAC-SHA256 Authorization value
// for a realistic SyncBlueprint request, against
//   - the primitives alone: exactly the crypto calls Tc3Signer makes (2 x
//     SHA-256, 4 chained HMAC-SHA256, pre-fetched OpenSSL objects through
//     service/tencent/crypto.h) on pre-built strings: the floor any
//     implementation pays;
//   - the same signature from OpenSSL's one-shot SHA256()/HMAC() calls (the
//     implicit-fetch cost crypto.h avoids);
//   - the official Node SDK's signer (tencentcloud-sdk-nodejs sign3) on the
//     same inputs, timed by bench/node_sign_bench.js, whose output must be
//     byte-identical to ours.
// Google Benchmark runs the C++ cases; the program then prints ROW lines.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <cstdio>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "service/tencent/crypto.h"
#include "service/tencent/lighthouse_json.h"
#include "service/tencent/tc3_signer.h"

namespace blueprintsync::bench {
namespace {

namespace crypto = tencent::crypto;
using tencent::SignInput;
using tencent::Tc3Signer;

constexpr int64_t kTimestamp = 1700000000;
constexpr char kHost[] = "lighthouse.tencentcloudapi.com";
constexpr char kContentType[] = "application/json";

const std::string& Payload() {
  static const std::string* const payload = [] {
    tencent::SyncBlueprintRequest r;
    r.region = "ap-guangzhou";
    r.blueprint_id = "lhbp-ls883feh";
    r.destination_regions = {"ap-beijing", "ap-shanghai", "ap-chengdu", "ap-nanjing"};
    return new std::string(tencent::json::EncodeSyncBlueprint(r));
  }();
  return *payload;
}

SignInput Input() {
  SignInput in;
  in.service = "lighthouse";
  in.host = kHost;
  in.content_type = kContentType;
  in.payload = Payload();
  in.timestamp = kTimestamp;
  return in;
}

void BM_Tc3Authorization(benchmark::State& state) {
  const SignInput in = Input();
  for (auto _ : state) {
    std::string auth = Tc3Signer::Authorization(kSecretId, kSecretKey, in);
    benchmark::DoNotOptimize(auth);
  }
}
BENCHMARK(BM_Tc3Authorization);

// The signer's crypto calls and nothing else: the strings they hash are
// built once, outside the loop.
void BM_Tc3PrimitivesOnly(benchmark::State& state) {
  const SignInput in = Input();
  const std::string canonical = Tc3Signer::CanonicalRequest(in);
  const std::string to_sign = Tc3Signer::StringToSign(in);
  const std::string key0 = absl::StrCat("TC3", kSecretKey);
  const std::string date = Tc3Signer::UtcDate(kTimestamp);
  for (auto _ : state) {
    crypto::Digest payload_hash = crypto::Sha256(in.payload);
    crypto::Digest canonical_hash = crypto::Sha256(canonical);
    crypto::Digest k1 = crypto::HmacSha256(key0, date);
    crypto::Digest k2 = crypto::HmacSha256(crypto::AsStringView(k1), in.service);
    crypto::Digest k3 = crypto::HmacSha256(crypto::AsStringView(k2), "tc3_request");
    crypto::Digest sig = crypto::HmacSha256(crypto::AsStringView(k3), to_sign);
    benchmark::DoNotOptimize(payload_hash);
    benchmark::DoNotOptimize(canonical_hash);
    benchmark::DoNotOptimize(sig);
  }
}
BENCHMARK(BM_Tc3PrimitivesOnly);

// The same six calls through OpenSSL's one-shot API, which fetches the
// algorithm implicitly on every call.
void BM_Tc3PrimitivesOneShot(benchmark::State& state) {
  const SignInput in = Input();
  const std::string canonical = Tc3Signer::CanonicalRequest(in);
  const std::string to_sign = Tc3Signer::StringToSign(in);
  const std::string key0 = absl::StrCat("TC3", kSecretKey);
  const std::string date = Tc3Signer::UtcDate(kTimestamp);
  auto u = [](const std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
  };
  for (auto _ : state) {
    unsigned char h1[32], h2[32], k1[32], k2[32], k3[32], sig[32];
    unsigned int n = 0;
    SHA256(u(in.payload), in.payload.size(), h1);
    SHA256(u(canonical), canonical.size(), h2);
    HMAC(EVP_sha256(), key0.data(), static_cast<int>(key0.size()), u(date), date.size(), k1, &n);
    HMAC(EVP_sha256(), k1, 32, u(in.service), in.service.size(), k2, &n);
    HMAC(EVP_sha256(), k2, 32, u("tc3_request"), 11, k3, &n);
    HMAC(EVP_sha256(), k3, 32, u(to_sign), to_sign.size(), sig, &n);
    benchmark::DoNotOptimize(h1);
    benchmark::DoNotOptimize(h2);
    benchmark::DoNotOptimize(sig);
  }
}
BENCHMARK(BM_Tc3PrimitivesOneShot);

// Keeps the console output and remembers each benchmark's median CPU time
// (CPU, not wall: other processes on a small shared machine preempt us).
class MedianCollector : public benchmark::ConsoleReporter {
 public:
  MedianCollector() : ConsoleReporter(OO_Tabular) {}  // no colour codes in logs
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name == "median") {
        median_ns[run.run_name.function_name] = run.GetAdjustedCPUTime();
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> median_ns;
};

struct NodeResult {
  double ns_per_op = 0;
  std::string authorization;
  std::string error;
};

// Runs bench/node_sign_bench.js with the same inputs; it prints
// "<CPU ns_per_op> <authorization>" on one line.
NodeResult RunNode() {
  NodeResult r;
  const std::string script = absl::StrCat(BPS_SOURCE_DIR, "/bench/node_sign_bench.js");
  const std::string payload_file = "/tmp/bps-bench-sign-payload.json";
  if (std::FILE* f = std::fopen(payload_file.c_str(), "w")) {
    std::fwrite(Payload().data(), 1, Payload().size(), f);
    std::fclose(f);
  }
  const std::string cmd =
      absl::StrCat("node ", script, " ", payload_file, " ", kTimestamp, " ", kHost, " ",
                   kContentType, " ", kSecretId, " ", kSecretKey, " 2>&1");
  std::FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) {
    r.error = "cannot run node";
    return r;
  }
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  const int status = pclose(p);
  std::remove(payload_file.c_str());
  const size_t space = out.find(' ');
  if (status != 0 || space == std::string::npos) {
    r.error = out.substr(0, 300);
    return r;
  }
  r.ns_per_op = std::strtod(out.c_str(), nullptr);
  r.authorization = out.substr(space + 1);
  while (!r.authorization.empty() && r.authorization.back() == '\n') r.authorization.pop_back();
  return r;
}

}  // namespace
}  // namespace blueprintsync::bench

int main(int argc, char** argv) {
  using namespace blueprintsync::bench;  // NOLINT(build/namespaces): main of a bench tool
  // Defaults that give stable medians in a few seconds; flags still override.
  std::vector<char*> args(argv, argv + argc);
  std::string reps = "--benchmark_repetitions=5";
  std::string only_agg = "--benchmark_report_aggregates_only=true";
  std::string min_time = "--benchmark_min_time=0.5";
  std::string color = "--benchmark_color=false";
  args.insert(args.begin() + 1, {reps.data(), only_agg.data(), min_time.data(), color.data()});
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  MedianCollector reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  const double full = reporter.median_ns["BM_Tc3Authorization"];
  const double prim = reporter.median_ns["BM_Tc3PrimitivesOnly"];
  const double oneshot = reporter.median_ns["BM_Tc3PrimitivesOneShot"];
  if (full <= 0 || prim <= 0) {
    std::fprintf(stderr, "signing_benchmark: missing results\n");
    return 1;
  }
  const double ratio = full / prim;
  PrintRow({"TC3 Authorization, C++ Tc3Signer (CPU ns/op)", Fixed(full, 0),
            absl::StrCat("primitives alone ", Fixed(prim, 0)), Fixed(ratio, 2), "<= 1.5x",
            MetText(ratio <= 1.5)});
  if (oneshot > 0) {
    PrintRow({"  same 6 calls via OpenSSL one-shot SHA256()/HMAC() (CPU ns/op)", Fixed(oneshot, 0),
              absl::StrCat("Tc3Signer ", Fixed(full, 0)), Fixed(oneshot / full, 2), "", ""});
  }
  const NodeResult node = RunNode();
  const std::string ours =
      blueprintsync::tencent::Tc3Signer::Authorization(kSecretId, kSecretKey, Input());
  if (!node.error.empty()) {
    PrintRow({"  TC3 Authorization, Node SDK sign3 (CPU ns/op)", "not measured: " + node.error, "",
              "", "", ""});
  } else if (node.authorization != ours) {
    std::fprintf(stderr, "Node SDK signature differs from ours:\n  node: %s\n  ours: %s\n",
                 node.authorization.c_str(), ours.c_str());
    PrintRow({"  TC3 Authorization, Node SDK sign3 (CPU ns/op)", "signature MISMATCH", "", "", "",
              "NO"});
    return 1;
  } else {
    PrintRow({"  TC3 Authorization, Node SDK sign3 (CPU ns/op; identical output)",
              Fixed(node.ns_per_op, 0), absl::StrCat("Tc3Signer ", Fixed(full, 0)),
              Fixed(node.ns_per_op / full, 2), "", ""});
  }
  return 0;
}
