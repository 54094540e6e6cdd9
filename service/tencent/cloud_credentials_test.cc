// The cloud credential providers (TKE OIDC, CVM role, STS AssumeRole) and the
// default chain, against the Lighthouse emulator in this process playing STS
// and the metadata service over real HTTP on 127.0.0.1:0. The emulator,
// providers and Lighthouse client share one FakeClock, so expiry and refresh
// are driven without waiting; the proof that a triple is right is that the
// emulator accepts a real Lighthouse call signed with it.
#include "service/tencent/cloud_credentials.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "rapidjson/document.h"
#include "service/common/log.h"
#include "service/common/testing/fake_clock.h"
#include "service/tencent/credentials.h"
#include "service/tencent/http_transport.h"
#include "service/tencent/lighthouse_client.h"
#include "service/tencent/testing/fake_http_transport.h"
#include "tests/emulator/emulator_server.h"
#include "tests/emulator/lighthouse_emulator.h"

namespace blueprintsync::tencent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Triple = std::tuple<std::string, std::string, std::string>;

constexpr char kRole[] = "bps-node-role";
constexpr char kProviderId[] = "emulator-oidc-provider";
constexpr char kRoleArn[] = "qcs::cam::uin/100000000001:roleName/blueprint-sync";
constexpr char kWebToken[] = "web-identity-token-0123456789-first";

Triple TripleOf(const Credentials& c) { return {c.secret_id, c.secret_key, c.token}; }

// Forwards to the real libcurl transport, remembers every triple an STS
// answer carried, and can hold STS calls until released.
class RecordingTransport final : public HttpTransport {
 public:
  explicit RecordingTransport(std::shared_ptr<HttpTransport> next) : next_(std::move(next)) {}

  absl::StatusOr<HttpResponse> Post(const HttpRequest& request) override {
    bool is_sts = false;
    for (const auto& [name, value] : request.headers) {
      if (name == "X-TC-Version" && value == kStsVersion) is_sts = true;
    }
    if (is_sts) {
      std::shared_ptr<absl::Notification> release;
      {
        absl::MutexLock lock(&mu_);
        ++sts_calls_;
        release = hold_;
        last_sts_ = request;
      }
      if (release != nullptr) {
        entered_.Notify();
        release->WaitForNotification();
      }
    }
    absl::StatusOr<HttpResponse> response = next_->Post(request);
    if (is_sts && response.ok()) {
      rapidjson::Document doc;
      doc.Parse(response->body.c_str());
      if (!doc.HasParseError() && doc.HasMember("Response") &&
          doc["Response"].HasMember("Credentials")) {
        const auto& c = doc["Response"]["Credentials"];
        absl::MutexLock lock(&mu_);
        issued_.insert(
            {c["TmpSecretId"].GetString(), c["TmpSecretKey"].GetString(), c["Token"].GetString()});
      }
    }
    return response;
  }

  // The next STS call blocks until Release().
  void Hold() {
    absl::MutexLock lock(&mu_);
    hold_ = std::make_shared<absl::Notification>();
  }
  void WaitUntilHeld() { entered_.WaitForNotification(); }
  void Release() {
    std::shared_ptr<absl::Notification> n;
    {
      absl::MutexLock lock(&mu_);
      n = std::move(hold_);
    }
    if (n != nullptr) n->Notify();
  }
  std::set<Triple> issued() const {
    absl::MutexLock lock(&mu_);
    return issued_;
  }
  int sts_calls() const {
    absl::MutexLock lock(&mu_);
    return sts_calls_;
  }
  HttpRequest last_sts() const {
    absl::MutexLock lock(&mu_);
    return last_sts_;
  }

 private:
  std::shared_ptr<HttpTransport> next_;
  absl::Notification entered_;
  mutable absl::Mutex mu_;
  std::shared_ptr<absl::Notification> hold_ ABSL_GUARDED_BY(mu_);
  std::set<Triple> issued_ ABSL_GUARDED_BY(mu_);
  int sts_calls_ ABSL_GUARDED_BY(mu_) = 0;
  HttpRequest last_sts_ ABSL_GUARDED_BY(mu_);
};

// Captures log lines for the duration of a test.
class LogCapture {
 public:
  LogCapture() : file_(std::tmpfile()) { log::SetOutput(file_); }
  ~LogCapture() {
    log::SetOutput(nullptr);
    std::fclose(file_);
  }
  std::string Text() {
    std::fflush(file_);
    std::rewind(file_);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), file_)) > 0) out.append(buf, n);
    std::fseek(file_, 0, SEEK_END);
    return out;
  }

 private:
  std::FILE* file_;
};

class CloudCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    emulator::EmulatorOptions options;
    options.clock = &clock_;
    emulator_ = std::make_unique<emulator::LighthouseEmulator>(std::move(options));
    server_ = std::make_unique<emulator::EmulatorServer>(emulator_.get());
    absl::StatusOr<int> port = server_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    base_ = absl::StrCat("http://127.0.0.1:", *port);
    env_[kEnvStsEndpoint] = base_;
    env_[kEnvMetadataEndpoint] = base_ + "/latest/meta-data/cam/security-credentials/";
    ASSERT_TRUE(
        emulator_->sts()
            .ConfigureSts(absl::StrCat(R"({"provider_id":")", kProviderId, R"(","role_arn":")",
                                       kRoleArn, R"(","web_identity_token":")", kWebToken, R"("})"))
            .ok());
    token_file_ = absl::StrCat(::testing::TempDir(), "/bps-tke-token-",
                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    WriteTokenFile(kWebToken);
  }

  void TearDown() override {
    // Closes the transport's keep-alive connections, which the server would
    // otherwise wait out when stopping.
    transport_.reset();
    server_->Stop();
    std::remove(token_file_.c_str());
  }

  void WriteTokenFile(const std::string& token) {
    std::ofstream(token_file_, std::ios::trunc) << token << "\n";
  }

  void SetTkeEnv() {
    env_[kEnvTkeRegion] = "ap-singapore";
    env_[kEnvTkeProviderId] = kProviderId;
    env_[kEnvTkeRoleArn] = kRoleArn;
    env_[kEnvTkeTokenFile] = token_file_;
  }

  EnvCredentialProvider::Getenv Getenv() {
    return [this](const std::string& name) -> std::optional<std::string> {
      absl::MutexLock lock(&env_mu_);
      auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
  }

  StsOptions Sts() {
    StsOptions o;
    o.transport = transport_;
    o.getenv = Getenv();
    o.refresh.clock = &clock_;
    return o;
  }

  CvmRoleOptions Cvm() {
    CvmRoleOptions o;
    o.getenv = Getenv();
    o.refresh.clock = &clock_;
    return o;
  }

  // A real Lighthouse call signed with what `provider` returns now.
  absl::Status LighthouseCallsWork(std::shared_ptr<CredentialProvider> provider) {
    LighthouseClientOptions options;
    options.endpoint = base_;
    options.retry.max_attempts = 1;
    auto client =
        MakeLighthouseClient(options, std::move(provider), MakeCurlTransport(), nullptr, &clock_);
    absl::StatusOr<DescribeRegionsResponse> regions = client->DescribeRegions("ap-guangzhou");
    if (!regions.ok()) return regions.status();
    if (regions->regions.empty()) return absl::InternalError("no regions");
    DescribeBlueprintsRequest request;
    request.region = "ap-guangzhou";
    request.blueprint_ids = {"lhbp-gzbase01"};
    absl::StatusOr<DescribeBlueprintsResponse> blueprints = client->DescribeBlueprints(request);
    if (!blueprints.ok()) return blueprints.status();
    if (blueprints->total_count != 1) return absl::InternalError("blueprint not found");
    return absl::OkStatus();
  }

  absl::Status TripleWorks(const Triple& t) {
    Credentials c;
    std::tie(c.secret_id, c.secret_key, c.token) = t;
    return LighthouseCallsWork(std::make_shared<StaticCredentialProvider>(c));
  }

  // stats.sts.<action>.<field> or stats.metadata.<field>
  int64_t Stat(const char* group, const char* action, const char* field) {
    rapidjson::Document doc;
    const std::string json = emulator_->StatsJson();
    doc.Parse(json.c_str());
    const rapidjson::Value* v = &doc[group];
    if (action != nullptr) v = &(*v)[action];
    return (*v)[field].GetInt64();
  }
  int64_t StsIssued(const char* action) { return Stat("sts", action, "issued"); }
  int64_t StsRequests() { return Stat("sts", nullptr, "requests"); }
  int64_t MetadataRequests() { return Stat("metadata", nullptr, "requests"); }
  int64_t MetadataIssued() { return Stat("metadata", nullptr, "issued"); }

  testing::FakeClock clock_{absl::FromUnixSeconds(1790000000)};
  std::unique_ptr<emulator::LighthouseEmulator> emulator_;
  std::unique_ptr<emulator::EmulatorServer> server_;
  std::string base_;
  std::string token_file_;
  std::shared_ptr<RecordingTransport> transport_ =
      std::make_shared<RecordingTransport>(MakeCurlTransport());
  absl::Mutex env_mu_;
  std::map<std::string, std::string> env_ ABSL_GUARDED_BY(env_mu_);
};

// ---------------------------------------------------------------------------
// TKE OIDC

TEST_F(CloudCredentialsTest, TkeOidcCredentialsWorkForLighthouse) {
  SetTkeEnv();
  auto provider = std::make_shared<TkeOidcCredentialProvider>(Sts());
  absl::StatusOr<Credentials> c = provider->GetCredentials();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->token.empty());
  EXPECT_EQ(c->expiry, clock_.Now() + absl::Seconds(7200));
  EXPECT_TRUE(transport_->issued().count(TripleOf(*c)));
  EXPECT_EQ(StsIssued("AssumeRoleWithWebIdentity"), 1);
  EXPECT_TRUE(LighthouseCallsWork(provider).ok());
  // Cached: the Lighthouse calls above needed no further STS call.
  EXPECT_EQ(StsRequests(), 1);
}

TEST_F(CloudCredentialsTest, TkeOidcRequestIsUnsignedWithDocumentedParameters) {
  SetTkeEnv();
  TkeOidcCredentialProvider provider(Sts());
  ASSERT_TRUE(provider.GetCredentials().ok());
  const HttpRequest sent = transport_->last_sts();
  std::map<std::string, std::string> headers(sent.headers.begin(), sent.headers.end());
  EXPECT_EQ(headers["Authorization"], "SKIP");
  EXPECT_EQ(headers["X-TC-Action"], "AssumeRoleWithWebIdentity");
  EXPECT_EQ(headers["X-TC-Version"], "2018-08-13");
  EXPECT_EQ(headers["X-TC-Region"], "ap-singapore");
  EXPECT_EQ(headers["X-TC-Timestamp"], absl::StrCat(absl::ToUnixSeconds(clock_.Now())));
  EXPECT_EQ(headers.count("X-TC-Token"), 0u);
  rapidjson::Document body;
  body.Parse(sent.body.c_str());
  ASSERT_TRUE(body.IsObject());
  EXPECT_STREQ(body["ProviderId"].GetString(), kProviderId);
  EXPECT_STREQ(body["RoleArn"].GetString(), kRoleArn);
  EXPECT_STREQ(body["WebIdentityToken"].GetString(), kWebToken);
  EXPECT_EQ(body["DurationSeconds"].GetInt64(), 7200);
  EXPECT_EQ(std::string(body["RoleSessionName"].GetString()),
            absl::StrCat("blueprint-sync-", absl::ToUnixMicros(clock_.Now())));
}

TEST_F(CloudCredentialsTest, TkeOidcNotConfiguredIsNotFoundAndPartialNamesMissing) {
  TkeOidcCredentialProvider none(Sts());
  absl::StatusOr<Credentials> c = none.GetCredentials();
  EXPECT_TRUE(absl::IsNotFound(c.status())) << c.status();
  EXPECT_EQ(none.refresh_failures(), 0);

  env_[kEnvTkeRegion] = "ap-singapore";
  env_[kEnvTkeRoleArn] = kRoleArn;
  TkeOidcCredentialProvider partial(Sts());
  c = partial.GetCredentials();
  EXPECT_TRUE(absl::IsFailedPrecondition(c.status())) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr("TKE_PROVIDER_ID is not set"));
  EXPECT_THAT(c.status().message(), HasSubstr("TKE_WEB_IDENTITY_TOKEN_FILE is not set"));
  EXPECT_THAT(c.status().message(), Not(HasSubstr("TKE_REGION is")));
  EXPECT_EQ(StsRequests(), 0);
  EXPECT_EQ(partial.refresh_failures(), 0);  // configuration, not a refresh
}

TEST_F(CloudCredentialsTest, TkeOidcRefreshesBeforeExpiryAndRereadsTheTokenFile) {
  SetTkeEnv();
  auto provider = std::make_shared<TkeOidcCredentialProvider>(Sts());
  absl::StatusOr<Credentials> first = provider->GetCredentials();
  ASSERT_TRUE(first.ok()) << first.status();

  // 7200 s lifetime: the margin is max(300 s, 720 s), so no refresh before 6480 s.
  clock_.Advance(absl::Seconds(6400));
  absl::StatusOr<Credentials> same = provider->GetCredentials();
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(TripleOf(*same), TripleOf(*first));
  EXPECT_EQ(StsRequests(), 1);

  // The kubelet rotated the token; STS only accepts the new one now.
  const std::string rotated = "web-identity-token-0123456789-second";
  WriteTokenFile(rotated);
  ASSERT_TRUE(emulator_->sts()
                  .ConfigureSts(absl::StrCat(R"({"web_identity_token":")", rotated, R"("})"))
                  .ok());
  clock_.Advance(absl::Seconds(100));  // 6500 s: inside the margin
  absl::StatusOr<Credentials> second = provider->GetCredentials();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(second->secret_id, first->secret_id);
  EXPECT_NE(second->token, first->token);
  EXPECT_EQ(StsIssued("AssumeRoleWithWebIdentity"), 2);
  EXPECT_EQ(provider->refresh_failures(), 0);
  EXPECT_TRUE(LighthouseCallsWork(provider).ok());
}

TEST_F(CloudCredentialsTest, TkeOidcRejectedTokenIsAnErrorThatNeverShowsTheToken) {
  SetTkeEnv();
  const std::string wrong = "wrong-web-identity-token-abcdefgh";
  WriteTokenFile(wrong);
  LogCapture logs;
  TkeOidcCredentialProvider provider(Sts());
  absl::StatusOr<Credentials> c = provider.GetCredentials();
  ASSERT_FALSE(c.ok());
  EXPECT_FALSE(absl::IsNotFound(c.status()));
  EXPECT_THAT(c.status().message(), HasSubstr("InvalidParameter.WebIdentityTokenError"));
  EXPECT_THAT(c.status().message(), Not(HasSubstr(wrong)));
  EXPECT_EQ(provider.refresh_failures(), 1);
  EXPECT_THAT(logs.Text(), HasSubstr("credential refresh failed"));
  EXPECT_THAT(logs.Text(), Not(HasSubstr(wrong)));
}

TEST_F(CloudCredentialsTest, TkeOidcExpiredWebIdentityTokenIsRejected) {
  SetTkeEnv();
  ASSERT_TRUE(emulator_->sts()
                  .ConfigureSts(absl::StrCat(R"({"web_identity_token_expiry":)",
                                             absl::ToUnixSeconds(clock_.Now()), "}"))
                  .ok());
  TkeOidcCredentialProvider provider(Sts());
  absl::StatusOr<Credentials> c = provider.GetCredentials();
  EXPECT_THAT(c.status().message(), HasSubstr("WebIdentityTokenError: Expired token"));
}

// ---------------------------------------------------------------------------
// Refresh failures and concurrency

TEST_F(CloudCredentialsTest, FailedRefreshKeepsValidTripleCountsItAndRecovers) {
  SetTkeEnv();
  LogCapture logs;
  auto provider = std::make_shared<TkeOidcCredentialProvider>(Sts());
  absl::StatusOr<Credentials> first = provider->GetCredentials();
  ASSERT_TRUE(first.ok());

  ASSERT_TRUE(emulator_->sts().ConfigureSts(R"({"fail_next":1})").ok());
  clock_.Advance(absl::Seconds(6500));
  absl::StatusOr<Credentials> kept = provider->GetCredentials();
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(TripleOf(*kept), TripleOf(*first));
  EXPECT_EQ(provider->refresh_failures(), 1);
  EXPECT_THAT(provider->last_refresh_error().message(), HasSubstr("InternalError"));
  EXPECT_TRUE(absl::IsUnavailable(provider->last_refresh_error()));
  EXPECT_TRUE(LighthouseCallsWork(provider).ok());  // still valid for 700 s
  EXPECT_EQ(StsRequests(), 2);                      // backoff: no retry per call

  clock_.Advance(absl::Seconds(11));  // past the failure backoff
  absl::StatusOr<Credentials> fresh = provider->GetCredentials();
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_NE(fresh->secret_id, first->secret_id);
  EXPECT_EQ(provider->refresh_failures(), 1);
  EXPECT_TRUE(provider->last_refresh_error().ok());
  EXPECT_TRUE(LighthouseCallsWork(provider).ok());

  const std::string text = logs.Text();
  EXPECT_THAT(text, HasSubstr(R"("level":"warn","msg":"credential refresh failed")"));
  EXPECT_THAT(text, HasSubstr(R"("provider":"TKE OIDC")"));
  for (const Triple& t : transport_->issued()) {
    EXPECT_THAT(text, Not(HasSubstr(std::get<0>(t))));  // only masked ids
    EXPECT_THAT(text, Not(HasSubstr(std::get<1>(t))));
    EXPECT_THAT(text, Not(HasSubstr(std::get<2>(t))));
  }
  EXPECT_THAT(text, Not(HasSubstr(kWebToken)));
}

TEST_F(CloudCredentialsTest, ExpiredAndFailingRefreshIsAnError) {
  SetTkeEnv();
  auto provider = std::make_shared<TkeOidcCredentialProvider>(Sts());
  absl::StatusOr<Credentials> first = provider->GetCredentials();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(emulator_->sts().ConfigureSts(R"({"fail_next":1})").ok());
  clock_.Advance(absl::Seconds(7200));
  absl::StatusOr<Credentials> c = provider->GetCredentials();
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::IsUnavailable(c.status())) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr("expired at"));
  EXPECT_THAT(c.status().message(), HasSubstr("InternalError"));
  EXPECT_THAT(c.status().message(), Not(HasSubstr(first->secret_key)));
  EXPECT_THAT(c.status().message(), Not(HasSubstr(first->token)));
  EXPECT_EQ(provider->refresh_failures(), 1);
  // Expired: no backoff, the next call tries again and recovers.
  absl::StatusOr<Credentials> again = provider->GetCredentials();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(LighthouseCallsWork(provider).ok());
}

TEST_F(CloudCredentialsTest, ConcurrentCallersDuringRefreshGetTheOldTripleThenTheNew) {
  SetTkeEnv();
  auto provider = std::make_shared<TkeOidcCredentialProvider>(Sts());
  absl::StatusOr<Credentials> first = provider->GetCredentials();
  ASSERT_TRUE(first.ok());

  clock_.Advance(absl::Seconds(6500));
  transport_->Hold();
  absl::StatusOr<Credentials> refreshed;
  std::thread refresher([&] { refreshed = provider->GetCredentials(); });
  transport_->WaitUntilHeld();

  // While the refresh is held in flight, nobody waits and everybody gets
  // the complete old triple.
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 200; ++j) {
        absl::StatusOr<Credentials> c = provider->GetCredentials();
        if (!c.ok() || TripleOf(*c) != TripleOf(*first)) ++mismatches;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(transport_->sts_calls(), 2);  // only the one refresh

  transport_->Release();
  refresher.join();
  ASSERT_TRUE(refreshed.ok()) << refreshed.status();
  EXPECT_NE(refreshed->secret_id, first->secret_id);
  absl::StatusOr<Credentials> now = provider->GetCredentials();
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(TripleOf(*now), TripleOf(*refreshed));
}

TEST_F(CloudCredentialsTest, EightThreadsAcrossRepeatedRefreshesNeverSeeAMixedTriple) {
  SetTkeEnv();
  auto provider = std::make_shared<TkeOidcCredentialProvider>(Sts());
  ASSERT_TRUE(provider->GetCredentials().ok());
  absl::Mutex mu;
  std::set<Triple> seen;
  std::atomic<int> failures{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      std::set<Triple> mine;
      while (!stop.load()) {
        absl::StatusOr<Credentials> c = provider->GetCredentials();
        if (!c.ok()) {
          ++failures;
          continue;
        }
        mine.insert(TripleOf(*c));
      }
      absl::MutexLock lock(&mu);
      seen.insert(mine.begin(), mine.end());
    });
  }
  for (int round = 0; round < 5; ++round) {
    const std::string before = provider->GetCredentials()->secret_id;
    clock_.Advance(absl::Seconds(6500));  // into the margin, still valid
    // Wait until the refresh (done by whichever thread came first) has
    // landed, so that the next advance cannot overtake a request in flight.
    while (provider->GetCredentials()->secret_id == before) {
      absl::SleepFor(absl::Milliseconds(1));
    }
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(transport_->sts_calls(), 6);
  const std::set<Triple> issued = transport_->issued();
  EXPECT_EQ(issued.size(), 6u);
  EXPECT_GE(seen.size(), 2u);
  for (const Triple& t : seen) {
    EXPECT_EQ(issued.count(t), 1u)
        << "a triple STS never issued: id " << MaskSecretId(std::get<0>(t));
  }
  // And the current one really works.
  absl::StatusOr<Credentials> last = provider->GetCredentials();
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(TripleWorks(TripleOf(*last)).ok());
}

// A provider whose Fetch the test controls, for the base class alone.
class ScriptedProvider final : public RefreshingCredentialProvider {
 public:
  explicit ScriptedProvider(Clock* clock) : RefreshingCredentialProvider(RefreshOptions{clock}) {}
  std::string Name() const override { return "scripted"; }
  absl::Notification release;
  std::atomic<int> fetches{0};
  absl::Status next_error;

 private:
  absl::StatusOr<Credentials> Fetch() override {
    ++fetches;
    release.WaitForNotification();
    if (!next_error.ok()) return next_error;
    return Credentials{"AKIDscripted0001", "key", "token", clock()->Now() + absl::Hours(1)};
  }
};

TEST(RefreshingCredentialProviderTest, CallersWithoutATripleShareOneFailedFetch) {
  testing::FakeClock clock;
  ScriptedProvider provider(&clock);
  provider.next_error = absl::UnavailableError("sts down");
  std::vector<absl::StatusOr<Credentials>> results(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] { results[i] = provider.GetCredentials(); });
  }
  while (provider.fetches.load() == 0) absl::SleepFor(absl::Milliseconds(1));
  absl::SleepFor(absl::Milliseconds(50));  // let the others queue behind it
  provider.release.Notify();
  for (std::thread& t : threads) t.join();
  for (const auto& r : results) {
    EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  }
  // Late arrivals may start their own attempt, but never one each.
  EXPECT_LT(provider.fetches.load(), 8);
  EXPECT_EQ(provider.refresh_failures(), provider.fetches.load());
}

TEST(RefreshingCredentialProviderTest, ShortLifetimeIsNotRefetchedOnEveryCall) {
  testing::FakeClock clock;
  class Short final : public RefreshingCredentialProvider {
   public:
    explicit Short(Clock* c) : RefreshingCredentialProvider(RefreshOptions{c}) {}
    std::string Name() const override { return "short"; }
    int fetches = 0;

   private:
    absl::StatusOr<Credentials> Fetch() override {
      ++fetches;
      return Credentials{absl::StrCat("AKIDshort", fetches), "k", "t",
                         clock()->Now() + absl::Seconds(120)};
    }
  } provider(&clock);
  ASSERT_TRUE(provider.GetCredentials().ok());
  ASSERT_TRUE(provider.GetCredentials().ok());
  EXPECT_EQ(provider.fetches, 1);  // margin capped at half the 120 s lifetime
  clock.Advance(absl::Seconds(61));
  ASSERT_TRUE(provider.GetCredentials().ok());
  EXPECT_EQ(provider.fetches, 2);
}

// ---------------------------------------------------------------------------
// CVM role

TEST_F(CloudCredentialsTest, CvmRoleDiscoversTheRoleAndItsCredentialsWork) {
  ASSERT_TRUE(
      emulator_->sts().ConfigureMetadata(absl::StrCat(R"({"role":")", kRole, R"("})")).ok());
  auto provider = std::make_shared<CvmRoleCredentialProvider>(Cvm());
  absl::StatusOr<Credentials> c = provider->GetCredentials();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->expiry, clock_.Now() + absl::Seconds(7200));
  EXPECT_EQ(MetadataRequests(), 2);  // discovery + credentials
  EXPECT_EQ(MetadataIssued(), 1);
  EXPECT_TRUE(LighthouseCallsWork(provider).ok());

  // The refresh reuses the discovered role name.
  clock_.Advance(absl::Seconds(6500));
  absl::StatusOr<Credentials> next = provider->GetCredentials();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_NE(next->secret_id, c->secret_id);
  EXPECT_EQ(MetadataRequests(), 3);
  EXPECT_TRUE(LighthouseCallsWork(provider).ok());
}

TEST_F(CloudCredentialsTest, CvmRoleFromEnvironmentSkipsDiscovery) {
  ASSERT_TRUE(
      emulator_->sts().ConfigureMetadata(absl::StrCat(R"({"role":")", kRole, R"("})")).ok());
  env_[kEnvCvmRole] = kRole;
  CvmRoleCredentialProvider provider(Cvm());
  ASSERT_TRUE(provider.GetCredentials().ok());
  EXPECT_EQ(MetadataRequests(), 1);
}

TEST_F(CloudCredentialsTest, CvmRoleWithoutRoleOrMetadataServiceIsNotFound) {
  CvmRoleCredentialProvider no_role(Cvm());  // emulator: no role bound, 404
  absl::StatusOr<Credentials> c = no_role.GetCredentials();
  EXPECT_TRUE(absl::IsNotFound(c.status())) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr("HTTP 404"));
  EXPECT_EQ(no_role.refresh_failures(), 0);

  // A port nothing listens on: connection refused.
  emulator::LighthouseEmulator other(emulator::EmulatorOptions{});
  emulator::EmulatorServer closed(&other);
  absl::StatusOr<int> port = closed.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok());
  closed.Stop();
  env_[kEnvMetadataEndpoint] =
      absl::StrCat("http://127.0.0.1:", *port, "/latest/meta-data/cam/security-credentials/");
  CvmRoleCredentialProvider refused(Cvm());
  c = refused.GetCredentials();
  EXPECT_TRUE(absl::IsNotFound(c.status())) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr("no metadata service answered"));
}

TEST_F(CloudCredentialsTest, CvmRoleCodeOtherThanSuccessIsAnError) {
  ASSERT_TRUE(emulator_->sts()
                  .ConfigureMetadata(absl::StrCat(R"({"role":")", kRole, R"(","code":"Failed"})"))
                  .ok());
  CvmRoleCredentialProvider provider(Cvm());
  absl::StatusOr<Credentials> c = provider.GetCredentials();
  EXPECT_TRUE(absl::IsFailedPrecondition(c.status())) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr(R"(Code is "Failed")"));
}

TEST_F(CloudCredentialsTest, CvmRoleFailedRefreshKeepsTripleAndRecovers) {
  ASSERT_TRUE(
      emulator_->sts()
          .ConfigureMetadata(absl::StrCat(R"({"role":")", kRole, R"(","duration_seconds":3600})"))
          .ok());
  auto provider = std::make_shared<CvmRoleCredentialProvider>(Cvm());
  absl::StatusOr<Credentials> first = provider->GetCredentials();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(emulator_->sts().ConfigureMetadata(R"({"fail_next":1})").ok());
  clock_.Advance(absl::Seconds(3300));  // margin max(300 s, 360 s)
  absl::StatusOr<Credentials> kept = provider->GetCredentials();
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(TripleOf(*kept), TripleOf(*first));
  EXPECT_EQ(provider->refresh_failures(), 1);
  EXPECT_THAT(provider->last_refresh_error().message(), HasSubstr("HTTP status 500"));
  clock_.Advance(absl::Seconds(11));
  absl::StatusOr<Credentials> fresh = provider->GetCredentials();
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_NE(fresh->secret_id, first->secret_id);
  EXPECT_TRUE(LighthouseCallsWork(provider).ok());
}

// ---------------------------------------------------------------------------
// STS AssumeRole

TEST_F(CloudCredentialsTest, AssumeRoleWithPermanentKeyWorksForLighthouse) {
  env_[kEnvRoleArn] = kRoleArn;
  auto source = std::make_shared<StaticCredentialProvider>(Credentials{
      emulator::kDefaultSecretId, emulator::kDefaultSecretKey, "", absl::InfiniteFuture()});
  auto provider = std::make_shared<AssumeRoleCredentialProvider>(source, Sts());
  absl::StatusOr<Credentials> c = provider->GetCredentials();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NE(c->secret_id, emulator::kDefaultSecretId);
  EXPECT_FALSE(c->token.empty());
  EXPECT_EQ(StsIssued("AssumeRole"), 1);
  const HttpRequest sent = transport_->last_sts();
  std::map<std::string, std::string> headers(sent.headers.begin(), sent.headers.end());
  EXPECT_EQ(headers["X-TC-Region"], "ap-guangzhou");
  EXPECT_THAT(headers["Authorization"],
              HasSubstr(absl::StrCat("Credential=", emulator::kDefaultSecretId, "/")));
  EXPECT_THAT(headers["Authorization"], HasSubstr("/sts/tc3_request"));
  EXPECT_TRUE(LighthouseCallsWork(provider).ok());
}

TEST_F(CloudCredentialsTest, AssumeRoleSignedWithTemporaryKeySendsItsToken) {
  env_[kEnvRoleArn] = kRoleArn;
  env_[kEnvRegion] = "ap-shanghai";
  env_[kEnvRoleSessionName] = "my-session";
  auto source = std::make_shared<StaticCredentialProvider>(
      Credentials{emulator::kDefaultTemporarySecretId, emulator::kDefaultTemporarySecretKey,
                  emulator::kDefaultTemporaryToken, absl::InfiniteFuture()});
  AssumeRoleCredentialProvider provider(source, Sts());
  absl::StatusOr<Credentials> c = provider.GetCredentials();
  ASSERT_TRUE(c.ok()) << c.status();
  const HttpRequest sent = transport_->last_sts();
  std::map<std::string, std::string> headers(sent.headers.begin(), sent.headers.end());
  EXPECT_EQ(headers["X-TC-Token"], emulator::kDefaultTemporaryToken);
  EXPECT_EQ(headers["X-TC-Region"], "ap-shanghai");
  EXPECT_THAT(sent.body, HasSubstr(R"("RoleSessionName":"my-session")"));
}

TEST_F(CloudCredentialsTest, AssumeRoleWithWrongKeyOrRoleFailsWithoutSecrets) {
  env_[kEnvRoleArn] = kRoleArn;
  const std::string bad_key = "WrongSecretKeyWrongSecretKey0000";
  auto bad = std::make_shared<StaticCredentialProvider>(
      Credentials{emulator::kDefaultSecretId, bad_key, "", absl::InfiniteFuture()});
  AssumeRoleCredentialProvider provider(bad, Sts());
  absl::StatusOr<Credentials> c = provider.GetCredentials();
  EXPECT_TRUE(absl::IsPermissionDenied(c.status())) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr("AuthFailure.SignatureFailure"));
  EXPECT_THAT(c.status().message(), Not(HasSubstr(bad_key)));

  auto good = std::make_shared<StaticCredentialProvider>(Credentials{
      emulator::kDefaultSecretId, emulator::kDefaultSecretKey, "", absl::InfiniteFuture()});
  AssumeRoleCredentialProvider wrong_role(good, Sts(), "qcs::cam::uin/1:roleName/nope");
  c = wrong_role.GetCredentials();
  EXPECT_TRUE(absl::IsFailedPrecondition(c.status())) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr("ResourceNotFound.RoleNotExist"));
}

// ---------------------------------------------------------------------------
// Fake transport: answers the emulator does not give

std::shared_ptr<HttpTransport> CannedTransport(HttpResponse response) {
  auto transport = std::make_shared<testing::FakeHttpTransport>();
  transport->AnswerAlways(std::move(response));
  return transport;
}

TEST_F(CloudCredentialsTest, StsErrorEchoingTheTokenIsScrubbedAndMalformedAnswersAreErrors) {
  SetTkeEnv();
  StsOptions options = Sts();
  options.transport = CannedTransport(HttpResponse{
      200, "application/json",
      absl::StrCat(R"({"Response":{"Error":{"Code":"InvalidParameter","Message":"bad token )",
                   kWebToken, R"("},"RequestId":"r-1"}})")});
  TkeOidcCredentialProvider echo(options);
  absl::StatusOr<Credentials> c = echo.GetCredentials();
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), Not(HasSubstr(kWebToken)));
  EXPECT_THAT(c.status().message(), HasSubstr("[redacted]"));
  EXPECT_THAT(c.status().message(), HasSubstr("RequestId r-1"));

  options.transport = CannedTransport(HttpResponse{
      200, "application/json",
      R"({"Response":{"Credentials":{"TmpSecretId":"AKIDx","TmpSecretKey":"leakme-secret"},"RequestId":"r"}})"});
  TkeOidcCredentialProvider half(options);
  c = half.GetCredentials();
  EXPECT_TRUE(absl::IsUnavailable(c.status())) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr("malformed response"));
  EXPECT_THAT(c.status().message(), Not(HasSubstr("leakme-secret")));

  options.transport = CannedTransport(HttpResponse{503, "text/html", "<html>busy</html>"});
  TkeOidcCredentialProvider busy(options);
  c = busy.GetCredentials();
  EXPECT_TRUE(absl::IsUnavailable(c.status())) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr("HTTP status 503"));
}

// ---------------------------------------------------------------------------
// The default chain

TEST_F(CloudCredentialsTest, ChainPrefersEnvironmentOverClusterIdentities) {
  SetTkeEnv();
  ASSERT_TRUE(
      emulator_->sts().ConfigureMetadata(absl::StrCat(R"({"role":")", kRole, R"("})")).ok());
  env_["TENCENTCLOUD_SECRET_ID"] = emulator::kDefaultSecretId;
  env_["TENCENTCLOUD_SECRET_KEY"] = emulator::kDefaultSecretKey;
  auto chain = MakeCloudCredentialChain({Getenv(), transport_, nullptr, &clock_});
  absl::StatusOr<Credentials> c = chain->GetCredentials();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->secret_id, emulator::kDefaultSecretId);
  EXPECT_EQ(StsRequests(), 0);
  EXPECT_EQ(MetadataRequests(), 0);
}

TEST_F(CloudCredentialsTest, ChainUsesTkeBeforeCvmRole) {
  SetTkeEnv();
  ASSERT_TRUE(
      emulator_->sts().ConfigureMetadata(absl::StrCat(R"({"role":")", kRole, R"("})")).ok());
  auto chain = MakeCloudCredentialChain({Getenv(), transport_, nullptr, &clock_});
  absl::StatusOr<Credentials> c = chain->GetCredentials();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(StsIssued("AssumeRoleWithWebIdentity"), 1);
  EXPECT_EQ(MetadataRequests(), 0);
  EXPECT_TRUE(LighthouseCallsWork(chain).ok());
  EXPECT_EQ(StsRequests(), 1);  // cached across the chain's calls
}

TEST_F(CloudCredentialsTest, ChainFallsThroughToCvmRole) {
  ASSERT_TRUE(
      emulator_->sts().ConfigureMetadata(absl::StrCat(R"({"role":")", kRole, R"("})")).ok());
  auto chain = MakeCloudCredentialChain({Getenv(), transport_, nullptr, &clock_});
  absl::StatusOr<Credentials> c = chain->GetCredentials();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(MetadataIssued(), 1);
  EXPECT_EQ(StsRequests(), 0);
  EXPECT_TRUE(LighthouseCallsWork(chain).ok());
}

TEST_F(CloudCredentialsTest, ChainWithNothingConfiguredListsEveryProvider) {
  auto chain = MakeCloudCredentialChain({Getenv(), transport_, nullptr, &clock_});
  absl::StatusOr<Credentials> c = chain->GetCredentials();
  ASSERT_TRUE(absl::IsNotFound(c.status())) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr("environment ("));
  EXPECT_THAT(c.status().message(), HasSubstr("profile file"));
  EXPECT_THAT(c.status().message(), HasSubstr("TKE OIDC (TKE_REGION"));
  EXPECT_THAT(c.status().message(), HasSubstr("CVM role (no CAM role bound"));
}

TEST_F(CloudCredentialsTest, ChainStopsAtPartialTkeConfiguration) {
  ASSERT_TRUE(
      emulator_->sts().ConfigureMetadata(absl::StrCat(R"({"role":")", kRole, R"("})")).ok());
  env_[kEnvTkeRoleArn] = kRoleArn;
  auto chain = MakeCloudCredentialChain({Getenv(), transport_, nullptr, &clock_});
  absl::StatusOr<Credentials> c = chain->GetCredentials();
  ASSERT_TRUE(absl::IsFailedPrecondition(c.status())) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr("TKE_REGION is not set"));
  EXPECT_EQ(MetadataRequests(), 0);
}

TEST_F(CloudCredentialsTest, ChainWithRoleArnAssumesTheRoleWithTheEnvironmentKey) {
  env_["TENCENTCLOUD_SECRET_ID"] = emulator::kDefaultSecretId;
  env_["TENCENTCLOUD_SECRET_KEY"] = emulator::kDefaultSecretKey;
  env_[kEnvRoleArn] = kRoleArn;
  auto chain = MakeCloudCredentialChain({Getenv(), transport_, nullptr, &clock_});
  EXPECT_EQ(chain->Name(), "STS AssumeRole");
  absl::StatusOr<Credentials> c = chain->GetCredentials();
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NE(c->secret_id, emulator::kDefaultSecretId);
  EXPECT_FALSE(c->token.empty());
  EXPECT_EQ(StsIssued("AssumeRole"), 1);
  EXPECT_TRUE(LighthouseCallsWork(chain).ok());
}

TEST_F(CloudCredentialsTest, RefreshFailuresAreSummedThroughChainAndAssumeRole) {
  // AssumeRole over a chain whose TKE member is the one failing.
  SetTkeEnv();
  env_[kEnvRoleArn] = kRoleArn;
  auto chain = MakeCloudCredentialChain({Getenv(), transport_, nullptr, &clock_});
  ASSERT_TRUE(chain->GetCredentials().ok());
  EXPECT_EQ(CredentialRefreshFailures(*chain), 0);
  EXPECT_EQ(StsIssued("AssumeRoleWithWebIdentity"), 1);
  EXPECT_EQ(StsIssued("AssumeRole"), 1);
  ASSERT_TRUE(emulator_->sts().ConfigureSts(R"({"fail_next":2})").ok());
  clock_.Advance(absl::Seconds(6500));  // both triples inside their margins
  absl::StatusOr<Credentials> c = chain->GetCredentials();
  ASSERT_TRUE(c.ok()) << c.status();
  // The AssumeRole refresh first refreshed its source (TKE, failed, old
  // triple kept), then signed with it and failed too.
  EXPECT_EQ(CredentialRefreshFailures(*chain), 2);
}

TEST_F(CloudCredentialsTest, ChainWithRoleArnButNoKeyIsNotSilentlyNotFound) {
  env_[kEnvRoleArn] = kRoleArn;
  auto chain = MakeCloudCredentialChain({Getenv(), transport_, nullptr, &clock_});
  absl::StatusOr<Credentials> c = chain->GetCredentials();
  ASSERT_TRUE(absl::IsFailedPrecondition(c.status())) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr("TENCENTCLOUD_ROLE_ARN is set"));
}

}  // namespace
}  // namespace blueprintsync::tencent
