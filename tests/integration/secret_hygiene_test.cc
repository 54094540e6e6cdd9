// No secret leaks on failure paths: with recognizable SecretKey and token
// values, every error the client stack returns (message and the full
// Status::ToString(), which includes the ApiError payload) and everything the
// lighthouse-emulator binary writes to stderr is free of them and of
// signatures.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "service/common/testing/fake_clock.h"
#include "tests/integration/integration_harness.h"
#include "tests/testing_util/process.h"

namespace blueprintsync::testing {
namespace {

using tencent::DescribeBlueprintsRequest;
using tencent::SyncBlueprintRequest;

constexpr char kSecretId[] = "AKIDINTEGRATIONHYGIENE00000000000000";
constexpr char kSecretKey[] = "HygieneSecretKeyValue-DoNotLog-4711";
constexpr char kToken[] = "HygieneSessionToken-DoNotLog-0815";
constexpr char kWrongKey[] = "HygieneWrongKeyValue-DoNotLog-2323";
constexpr char kWrongToken[] = "HygieneWrongToken-DoNotLog-4242";

// Fails (with `where`) if `text` shows any secret value or a signature.
void ExpectNoSecret(const std::string& text, const std::string& where) {
  for (const char* secret : {kSecretKey, kToken, kWrongKey, kWrongToken}) {
    EXPECT_FALSE(absl::StrContains(text, secret)) << where << " leaks a secret: " << text;
  }
  EXPECT_FALSE(absl::StrContains(text, "Signature=")) << where << " shows a signature: " << text;
  EXPECT_FALSE(absl::StrContains(text, "TC3-HMAC-SHA256 Credential"))
      << where << " shows an Authorization header: " << text;
}

tencent::Credentials Temporary(std::string key, std::string token) {
  return {kSecretId, std::move(key), std::move(token), absl::InfiniteFuture()};
}

DescribeBlueprintsRequest Describe() {
  DescribeBlueprintsRequest req;
  req.region = "ap-guangzhou";
  return req;
}

SyncBlueprintRequest Sync() {
  return SyncBlueprintRequest{"ap-guangzhou", "lhbp-gzbase01", {"ap-shanghai"}};
}

TEST(SecretHygieneTest, NoSecretInAnyClientError) {
  emulator::EmulatorOptions options;
  options.keys.push_back({kSecretId, kSecretKey, std::string(kToken), std::nullopt});
  EmulatorHarness emu(std::move(options));
  ASSERT_TRUE(emu.Start().ok());

  std::vector<std::pair<std::string, absl::Status>> failures;
  auto both = [&](const std::string& name, tencent::LighthouseClient& client) {
    failures.emplace_back(name + " describe", client.DescribeBlueprints(Describe()).status());
    failures.emplace_back(name + " sync", client.SyncBlueprint(Sync()).status());
  };
  {
    ClientSetup setup;
    setup.credentials = Temporary(kWrongKey, kToken);
    both("wrong key", *emu.Client(setup));
  }
  {
    ClientSetup setup;
    setup.credentials = Temporary(kSecretKey, kWrongToken);
    both("wrong token", *emu.Client(setup));
  }
  {
    ClientSetup setup;
    setup.credentials = Temporary(kSecretKey, "");
    both("no token", *emu.Client(setup));
  }
  {
    FakeClock skewed(absl::Now() - absl::Minutes(10));
    ClientSetup setup;
    setup.credentials = Temporary(kSecretKey, kToken);
    setup.clock = &skewed;
    both("clock skew", *emu.Client(setup));
  }
  {
    // Ambiguous failure and retried-out read failure with the right key.
    ASSERT_TRUE(
        emu.emulator().SetFaults(R"({"rules":[{"fault":"drop","phase":"after","count":0}]})").ok());
    ClientSetup setup;
    setup.credentials = Temporary(kSecretKey, kToken);
    setup.retry.max_attempts = 2;
    both("dropped connection", *emu.Client(setup));
    ASSERT_TRUE(emu.emulator().SetFaults(R"({"rules":[]})").ok());
  }
  {
    // Nothing listening: a bound socket that never listens.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    tencent::LighthouseClientOptions refused;
    refused.endpoint = absl::StrCat("http://127.0.0.1:", ntohs(addr.sin_port));
    refused.retry = ClientSetup::FastRetry();
    refused.retry.max_attempts = 2;
    auto client = tencent::MakeLighthouseClient(
        refused, std::make_shared<tencent::StaticCredentialProvider>(Temporary(kSecretKey, kToken)),
        tencent::MakeCurlTransport(ClientSetup::ShortTimeouts()));
    both("connection refused", *client);
    ::close(fd);
  }

  ASSERT_EQ(failures.size(), 12u);
  for (const auto& [name, status] : failures) {
    EXPECT_FALSE(status.ok()) << name;
    ExpectNoSecret(status.ToString(), name);
    std::optional<tencent::ApiError> e = tencent::GetApiError(status);
    ASSERT_TRUE(e.has_value()) << name << ": " << status;
    ExpectNoSecret(e->message, name + " (ApiError.message)");
  }
}

TEST(SecretHygieneTest, NoSecretInEmulatorStderr) {
  ChildProcessOptions options;
  options.argv = {LIGHTHOUSE_EMULATOR_BINARY, "--listen", "127.0.0.1:0", "--key",
                  absl::StrCat(kSecretId, ":", kSecretKey, ":", kToken)};
  auto child = ChildProcess::Start(options);
  ASSERT_TRUE(child.ok()) << child.status();
  constexpr char kPrefix[] = "lighthouse-emulator listening on http://127.0.0.1:";
  auto line = (*child)->WaitForStdoutLine(
      [&](absl::string_view l) { return absl::StartsWith(l, kPrefix); }, absl::Seconds(10));
  ASSERT_TRUE(line.ok()) << line.status() << "\nstderr: " << (*child)->Stderr();
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(line->substr(sizeof(kPrefix) - 1), &port)) << *line;
  const std::string endpoint = absl::StrCat("http://127.0.0.1:", port);

  auto client_with = [&](tencent::Credentials credentials) {
    tencent::LighthouseClientOptions o;
    o.endpoint = endpoint;
    o.retry = ClientSetup::FastRetry();
    return tencent::MakeLighthouseClient(
        o, std::make_shared<tencent::StaticCredentialProvider>(std::move(credentials)),
        tencent::MakeCurlTransport(ClientSetup::ShortTimeouts()));
  };
  {
    // Scoped: the clients' idle keep-alive connections close before SIGTERM,
    // so the emulator does not wait for them when it stops.
    auto good = client_with(Temporary(kSecretKey, kToken));
    auto ok_sync = good->SyncBlueprint(Sync());
    EXPECT_TRUE(ok_sync.ok()) << ok_sync.status();
    auto ok_describe = good->DescribeBlueprints(Describe());
    EXPECT_TRUE(ok_describe.ok()) << ok_describe.status();
    EXPECT_FALSE(client_with(Temporary(kWrongKey, kToken))->DescribeBlueprints(Describe()).ok());
    EXPECT_FALSE(client_with(Temporary(kSecretKey, kWrongToken))->SyncBlueprint(Sync()).ok());
  }

  ASSERT_TRUE((*child)->Signal(SIGTERM).ok());
  auto exit = (*child)->WaitForExit(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, ExitedWith(0)) << exit->ToString();
  ASSERT_TRUE((*child)->WaitForOutputClosed(absl::Seconds(10)).ok());

  const std::string err = (*child)->Stderr();
  // The log must actually cover the calls, or its cleanliness proves nothing.
  EXPECT_THAT(err, ::testing::HasSubstr("action=SyncBlueprint"));
  EXPECT_THAT(err, ::testing::HasSubstr("AuthFailure.SignatureFailure"));
  EXPECT_THAT(err, ::testing::HasSubstr("AuthFailure.TokenFailure"));
  ExpectNoSecret(err, "emulator stderr");
  ExpectNoSecret((*child)->Stdout(), "emulator stdout");
}

}  // namespace
}  // namespace blueprintsync::testing
