// End-to-end: the gRPC port with mTLS and an authorization policy, the
// plaintext health port, certificate reloading and the start-up checks, all
// against a real blueprint-syncd and the emulator. A throwaway CA, a server
// certificate and client certificates (writer, reader, stranger) are made
// with the openssl CLI in the test's temp dir at run time; no key is checked
// in. The TLS files are laid out as a Kubernetes Secret volume is (symlinks
// through "..data"), so the reload test swaps them the way the kubelet does.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.pb.h"
#include "rapidjson/document.h"
#include "tests/e2e/e2e_harness.h"

namespace blueprintsync::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using v1::SyncJob;

constexpr char kServerName[] = "blueprint-sync.test";
constexpr int kServing = 1;
constexpr int kNotServing = 2;

// One openssl config for every certificate; the sections are the profiles.
constexpr char kOpensslConfig[] = R"(
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:blueprint-sync.test,IP:127.0.0.1
[writer]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:writer.test
[reader]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://test/ns/ops/sa/reader
[stranger]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:stranger.test
)";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// 16 base64 characters of a PEM private key's secret part (the first line's
// end: past the PKCS#8 header bytes that every P-256 key shares).
std::string SecretFragment(const std::string& pem) {
  const size_t body = pem.find('\n') + 1;
  return pem.substr(body + 48, 16);
}

struct KeyPair {
  std::string cert;  // PEM
  std::string key;   // PEM, never printed
};

class SecurityE2eTest : public E2eTest {
 protected:
  void SetUp() override {
    E2eTest::SetUp();
    if (HasFailure()) return;
    pki_ = temp_dir() + "/pki";
    fs::create_directories(pki_);
    WriteFile(pki_ + "/openssl.cnf", kOpensslConfig);
    ASSERT_NO_FATAL_FAILURE(Openssl({"req",
                                     "-x509",
                                     "-new",
                                     "-newkey",
                                     "ec",
                                     "-pkeyopt",
                                     "ec_paramgen_curve:prime256v1",
                                     "-nodes",
                                     "-keyout",
                                     pki_ + "/ca.key",
                                     "-out",
                                     pki_ + "/ca.crt",
                                     "-days",
                                     "2",
                                     "-subj",
                                     "/CN=bps-e2e-ca",
                                     "-config",
                                     pki_ + "/openssl.cnf",
                                     "-extensions",
                                     "ca"}));
    ca_ = ReadFile(pki_ + "/ca.crt");
    int serial = 1;
    for (const char* name : {"server", "server2", "writer", "reader", "stranger"}) {
      const std::string profile = std::string(name) == "server2" ? "server" : name;
      ASSERT_NO_FATAL_FAILURE(Issue(name, profile, ++serial));
    }
    // The server's files, as a Secret volume mounts them.
    tls_dir_ = temp_dir() + "/tls";
    fs::create_directories(tls_dir_);
    ASSERT_NO_FATAL_FAILURE(PublishServerPair("server", "..v1"));
    for (const char* f : {"tls.crt", "tls.key", "ca.crt"}) {
      fs::create_symlink(std::string("..data/") + f, tls_dir_ + "/" + f);
    }
    WriteFile(
        temp_dir() + "/policy.json",
        R"({"writers": ["dns:writer.test"], "readers": ["uri:spiffe://test/ns/ops/sa/reader"]})");
  }

  void TearDown() override {
    // No private key may reach the server's output.
    if (server_running_) {
      for (const std::string& text : {server_process().Stdout(), server_process().Stderr()}) {
        EXPECT_EQ(text.find("PRIVATE KEY"), std::string::npos) << "server logged a private key";
        for (const auto& [name, pair] : pairs_) {
          EXPECT_EQ(text.find(SecretFragment(pair.key)), std::string::npos)
              << "server logged the private key of " << name;
        }
      }
    }
    E2eTest::TearDown();
  }

  void Openssl(std::vector<std::string> args) {
    ChildProcessOptions o;
    o.argv = {"/usr/bin/openssl"};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    auto r = RunToCompletion(std::move(o), absl::Seconds(30));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, ExitedWith(0)) << "openssl " << args[0] << ": " << r->err;
  }

  // <name>.key/.crt signed by the CA with the profile's extensions.
  void Issue(const std::string& name, const std::string& profile, int serial) {
    const std::string base = pki_ + "/" + name;
    ASSERT_NO_FATAL_FAILURE(
        Openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=" + name,
                 "-config", pki_ + "/openssl.cnf"}));
    ASSERT_NO_FATAL_FAILURE(
        Openssl({"x509", "-req", "-in", base + ".csr", "-CA", pki_ + "/ca.crt", "-CAkey",
                 pki_ + "/ca.key", "-set_serial", std::to_string(serial), "-days", "2", "-out",
                 base + ".crt", "-extfile", pki_ + "/openssl.cnf", "-extensions", profile}));
    pairs_[name] = {ReadFile(base + ".crt"), ReadFile(base + ".key")};
    ASSERT_TRUE(absl::StrContains(pairs_[name].cert, "BEGIN CERTIFICATE")) << name;
  }

  // Writes <tls_dir>/<version>/{tls.crt,tls.key,ca.crt} and points ..data at
  // it with one rename (atomic, like the kubelet's update of a Secret volume).
  void PublishServerPair(const std::string& pair, const std::string& version) {
    const std::string dir = tls_dir_ + "/" + version;
    fs::create_directories(dir);
    WriteFile(dir + "/tls.crt", pairs_[pair].cert);
    WriteFile(dir + "/tls.key", pairs_[pair].key);
    WriteFile(dir + "/ca.crt", ca_);
    const std::string tmp = tls_dir_ + "/..data_tmp";
    fs::remove(tmp);
    fs::create_symlink(version, tmp);
    fs::rename(tmp, tls_dir_ + "/..data");
  }

  std::vector<std::string> TlsArgs() const {
    return {"--tls-cert",          tls_dir_ + "/tls.crt", "--tls-key",
            tls_dir_ + "/tls.key", "--tls-client-ca",     tls_dir_ + "/ca.crt"};
  }

  absl::Status StartSecureServer(std::vector<std::string> more) {
    std::vector<std::string> args = TlsArgs();
    args.insert(args.end(), more.begin(), more.end());
    absl::Status s = StartServer(args);
    server_running_ = s.ok();
    return s;
  }

  // A channel to the server that trusts the test CA and presents `client`'s
  // certificate ("" for none). Its own subchannel pool: always a new
  // connection (and handshake), never one shared with another channel.
  std::shared_ptr<grpc::Channel> TlsChannel(const std::string& client) {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = ca_;
    if (!client.empty()) {
      o.pem_private_key = pairs_[client].key;
      o.pem_cert_chain = pairs_[client].cert;
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride(kServerName);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(server_address(), grpc::SslCredentials(o), args);
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return c;
  }

  grpc::Status ListAs(const std::shared_ptr<grpc::Channel>& channel, int* count = nullptr) {
    auto stub = v1::BlueprintSync::NewStub(channel);
    v1::ListSyncJobsRequest request;
    v1::ListSyncJobsResponse response;
    grpc::Status s = stub->ListSyncJobs(Context().get(), request, &response);
    if (count != nullptr) *count = response.sync_jobs_size();
    return s;
  }

  grpc::Status SyncAs(const std::shared_ptr<grpc::Channel>& channel, SyncJob* job,
                      const std::string& request_id = "") {
    auto stub = v1::BlueprintSync::NewStub(channel);
    return stub->SyncBlueprint(
        Context().get(), MakeRequest("ap-guangzhou", "lhbp-gzbase01", {"ap-beijing"}, request_id),
        job);
  }

  // The certificate the server presented on a new connection (PEM), or the error.
  absl::StatusOr<std::string> PresentedCertificate() {
    auto stub = v1::BlueprintSync::NewStub(TlsChannel("writer"));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    v1::ListSyncJobsResponse response;
    grpc::Status s = stub->ListSyncJobs(&context, v1::ListSyncJobsRequest(), &response);
    if (!s.ok()) return absl::UnavailableError(s.error_message());
    auto auth = context.auth_context();
    if (auth == nullptr) return absl::InternalError("no auth context");
    auto pem = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    if (pem.empty()) return absl::InternalError("no x509_pem_cert property");
    return std::string(pem.front().data(), pem.front().size());
  }

  // host:port from the server's {"msg":"health serving","address":...} line.
  absl::StatusOr<std::string> HealthAddress() {
    for (const std::string& line : server_process().StdoutLines()) {
      if (!absl::StrContains(line, "\"msg\":\"health serving\"")) continue;
      rapidjson::Document doc;
      doc.Parse(line.c_str(), line.size());
      if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("address") ||
          !doc["address"].IsString()) {
        return absl::InternalError(absl::StrCat("unexpected health line: ", line));
      }
      return std::string(doc["address"].GetString());
    }
    return absl::NotFoundError("no \"health serving\" log line");
  }

  std::string pki_;
  std::string tls_dir_;
  std::string ca_;
  std::map<std::string, KeyPair> pairs_;
  bool server_running_ = false;
};

TEST_F(SecurityE2eTest, MutualTlsSeparatesWritersFromReaders) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartSecureServer({"--authz-policy", temp_dir() + "/policy.json"}));
  EXPECT_THAT(server_process().Stdout(),
              AllOf(HasSubstr("\"tls\":\"mtls\""), HasSubstr("\"authz\":\"policy\"")));

  // No client certificate, or no TLS at all: refused before any handler runs.
  grpc::Status s = ListAs(TlsChannel(""));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE)
      << "a caller without a client certificate: " << s.error_message();
  s = ListAs(grpc::CreateChannel(server_address(), grpc::InsecureChannelCredentials()));
  EXPECT_FALSE(s.ok()) << "a plaintext caller got through";

  // A reader may not create jobs; it is told why, and nothing goes upstream.
  const auto reader = TlsChannel("reader");
  SyncJob job;
  s = SyncAs(reader, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(),
              AllOf(HasSubstr("SyncBlueprint"), HasSubstr("uri:spiffe://test/ns/ops/sa/reader"),
                    HasSubstr("only writers")));
  RichError rich = ParseRichError(s);
  ASSERT_TRUE(rich.info.has_value());
  EXPECT_EQ(rich.info->reason(), "PERMISSION_DENIED");
  // Even a request that would fail validation is refused for who sends it first.
  v1::SyncBlueprintRequest invalid;
  s = v1::BlueprintSync::NewStub(reader)->SyncBlueprint(Context().get(), invalid, &job);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();

  // A stranger (valid certificate, in no list) may not even read.
  const auto stranger = TlsChannel("stranger");
  s = ListAs(stranger);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), AllOf(HasSubstr("ListSyncJobs"), HasSubstr("dns:stranger.test")));

  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 0) << "a refused call reached Tencent";

  // The writer creates a job.
  const auto writer = TlsChannel("writer");
  const std::string request_id = "5d0c7a2e-41b6-4f0a-9c3e-7b1d2e3f4a5b";
  s = SyncAs(writer, &job, request_id);
  ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  EXPECT_EQ(job.state(), SyncJob::RUNNING) << job.ShortDebugString();
  {
    // Its rpc finished line: the certificate's identity (as the job records
    // it) and the address it came from, the request id and the new job.
    absl::StatusOr<std::string> line = server_process().WaitForStdoutLine(
        [&](absl::string_view l) {
          return absl::StrContains(l, R"("msg":"rpc finished")") &&
                 absl::StrContains(l, request_id) && absl::StrContains(l, R"("grpc.code":"OK")");
        },
        absl::Seconds(10));
    BPS_ASSERT_OK(line.status());
    rapidjson::Document d;
    d.Parse(line->c_str(), line->size());
    ASSERT_FALSE(d.HasParseError()) << *line;
    ASSERT_FALSE(job.creator().empty());
    ASSERT_TRUE(d.HasMember("caller") && d["caller"].IsString()) << *line;
    EXPECT_EQ(std::string(d["caller"].GetString()), job.creator()) << *line;
    ASSERT_TRUE(d.HasMember("peer.address") && d["peer.address"].IsString()) << *line;
    EXPECT_TRUE(absl::StartsWith(d["peer.address"].GetString(), "ipv4:127.0.0.1:")) << *line;
    ASSERT_TRUE(d.HasMember("job") && d["job"].IsString()) << *line;
    EXPECT_EQ(std::string(d["job"].GetString()), job.name());
    ASSERT_TRUE(d.HasMember("grpc.time_ms") && d["grpc.time_ms"].IsInt64()) << *line;
  }

  // The reader reads it: Get, List and Watch.
  SyncJob got;
  v1::GetSyncJobRequest get;
  get.set_name(job.name());
  s = v1::BlueprintSync::NewStub(reader)->GetSyncJob(Context().get(), get, &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got.name(), job.name());
  int listed = 0;
  s = ListAs(reader, &listed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(listed, 1);
  {
    v1::WatchSyncJobRequest watch;
    watch.set_name(job.name());
    auto context = Context();
    auto stream = v1::BlueprintSync::NewStub(reader)->WatchSyncJob(context.get(), watch);
    SyncJob first;
    ASSERT_TRUE(stream->Read(&first)) << "reader could not watch";
    EXPECT_EQ(first.name(), job.name());
    context->TryCancel();
    while (stream->Read(&first)) {
    }
    stream->Finish();
  }
  // The stranger may not watch either.
  {
    v1::WatchSyncJobRequest watch;
    watch.set_name(job.name());
    auto context = Context();
    auto stream = v1::BlueprintSync::NewStub(stranger)->WatchSyncJob(context.get(), watch);
    SyncJob first;
    EXPECT_FALSE(stream->Read(&first));
    s = stream->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  }

  // Health stays open to any verified caller on the main port.
  auto health = HealthCheck(stranger, "readiness", absl::Seconds(5));
  BPS_ASSERT_OK(health.status());
  EXPECT_EQ(*health, kServing);

  stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 1);
  EXPECT_EQ(stats->Action("SyncBlueprint").executed, 1);
}

// Anyone who can reach the port can fail TLS handshakes. gRPC core reports
// each one, and used to write it as an unformatted line on stderr, without
// limit: now such lines go through the JSON log, rate-limited.
#ifdef BLUEPRINT_SYNC_CLI
// The blueprint-sync CLI as a user runs it: `args` after the program name,
// `env` on top of an environment without BLUEPRINT_SYNC_* variables. No
// output of it may hold key material.
class SecurityCliE2eTest : public SecurityE2eTest {
 protected:
  RunResult Cli(std::vector<std::string> args,
                std::vector<std::pair<std::string, std::string>> env = {}) {
    ChildProcessOptions o;
    o.argv = {BLUEPRINT_SYNC_CLI, "--server", server_address(), "--timeout", "20s"};
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    o.env = std::move(env);
    o.unset_env = {"BLUEPRINT_SYNC_*", "http_proxy", "https_proxy", "grpc_proxy"};
    auto r = RunToCompletion(std::move(o), absl::Seconds(60));
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return RunResult{};
    for (const std::string& text : {r->out, r->err}) {
      EXPECT_EQ(text.find("PRIVATE KEY"), std::string::npos) << "the CLI printed a key";
      for (const auto& [name, pair] : pairs_) {
        EXPECT_EQ(text.find(SecretFragment(pair.key)), std::string::npos)
            << "the CLI printed the private key of " << name;
      }
    }
    return *r;
  }

  std::string Pem(const std::string& name) const { return pki_ + "/" + name; }
};

TEST_F(SecurityCliE2eTest, CliListsOverTlsWithCacertAndSaysWhatIsMissingWithout) {
  BPS_ASSERT_OK(StartEmulator());
  // TLS only: no client certificates asked for.
  const std::vector<std::string> tls_only = {"--tls-cert", tls_dir_ + "/tls.crt", "--tls-key",
                                             tls_dir_ + "/tls.key"};
  BPS_ASSERT_OK(StartServer(tls_only));
  server_running_ = true;
  SyncJob job;
  ASSERT_TRUE(SyncAs(TlsChannel(""), &job).ok());

  // The certificate names 127.0.0.1 (and blueprint-sync.test): --cacert is
  // enough; --server-name checks the other name.
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--cacert", Pem("ca.crt"), "list", "-o", "name"},
           {"list", "-o", "name", "--cacert", Pem("ca.crt"), "--server-name", kServerName}}) {
    RunResult r = Cli(args);
    EXPECT_EQ(r.status, ExitedWith(0)) << r.status.ToString() << "\n" << r.err;
    EXPECT_EQ(r.out, job.name() + "\n");
  }
  // From the environment, as a pod would set it.
  RunResult from_env = Cli({"list", "-o", "name"}, {{"BLUEPRINT_SYNC_CACERT", Pem("ca.crt")}});
  EXPECT_EQ(from_env.status, ExitedWith(0)) << from_env.err;
  EXPECT_EQ(from_env.out, job.name() + "\n");

  // Without --cacert: plaintext against a TLS port, refused, and the error
  // says that TLS was off and how to turn it on.
  RunResult plain = Cli({"list"});
  EXPECT_EQ(plain.status, ExitedWith(3)) << plain.status.ToString() << "\n" << plain.err;
  EXPECT_THAT(plain.err,
              AllOf(HasSubstr("UNAVAILABLE"), HasSubstr("tls: off"), HasSubstr("--cacert")));
  // --tls alone trusts only the system's roots: the test CA is not one.
  RunResult untrusted = Cli({"--tls", "list"});
  EXPECT_EQ(untrusted.status, ExitedWith(3)) << untrusted.err;
  EXPECT_THAT(untrusted.err, HasSubstr("tls: on"));
  // The CLI says it once; gRPC core's own handshake log line stays out.
  EXPECT_THAT(untrusted.err, Not(HasSubstr("ssl_transport_security")));
  // A name the certificate does not hold.
  RunResult wrong_name = Cli({"--cacert", Pem("ca.crt"), "--server-name", "other.test", "list"});
  EXPECT_EQ(wrong_name.status, ExitedWith(3)) << wrong_name.err;
  EXPECT_THAT(wrong_name.err, HasSubstr("--server-name"));

  // Files that cannot be used: usage errors naming the flag, before any call.
  RunResult missing = Cli({"--cacert", Pem("nope.crt"), "list"});
  EXPECT_EQ(missing.status, ExitedWith(2)) << missing.err;
  EXPECT_THAT(missing.err, AllOf(HasSubstr("--cacert: "), HasSubstr("nope.crt")));
  RunResult key_as_ca = Cli({"--cacert", Pem("writer.key"), "list"});
  EXPECT_EQ(key_as_ca.status, ExitedWith(2)) << key_as_ca.err;
  EXPECT_THAT(key_as_ca.err, HasSubstr("--cacert: "));
  RunResult cert_only = Cli({"--cacert", Pem("ca.crt"), "--cert", Pem("writer.crt"), "list"});
  EXPECT_EQ(cert_only.status, ExitedWith(2)) << cert_only.err;
  EXPECT_THAT(cert_only.err, HasSubstr("--cert and --key"));
}

TEST_F(SecurityCliE2eTest, CliPresentsItsClientCertificateForMtls) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartSecureServer({"--authz-policy", temp_dir() + "/policy.json"}));

  // The writer creates a job with the CLI and waits for it over mTLS (the
  // watch stream too).
  RunResult sync =
      Cli({"--cacert", Pem("ca.crt"), "--cert", Pem("writer.crt"), "--key", Pem("writer.key"),
           "sync", "--source-region", "ap-guangzhou", "--blueprint-id", "lhbp-gzbase01", "--to",
           "ap-beijing", "--wait", "-o", "name"});
  EXPECT_EQ(sync.status, ExitedWith(0)) << sync.status.ToString() << "\n" << sync.err;
  EXPECT_THAT(sync.out, ::testing::StartsWith("syncJobs/"));

  // The same through the environment, as the reader: it may list.
  RunResult list = Cli({"list", "-o", "json"}, {{"BLUEPRINT_SYNC_CACERT", Pem("ca.crt")},
                                                {"BLUEPRINT_SYNC_CERT", Pem("reader.crt")},
                                                {"BLUEPRINT_SYNC_KEY", Pem("reader.key")}});
  EXPECT_EQ(list.status, ExitedWith(0)) << list.err;
  EXPECT_THAT(list.out, HasSubstr(absl::StripTrailingAsciiWhitespace(sync.out)));

  // Without a client certificate the handshake is refused.
  RunResult anonymous = Cli({"--cacert", Pem("ca.crt"), "list"});
  EXPECT_EQ(anonymous.status, ExitedWith(3)) << anonymous.err;
  EXPECT_THAT(anonymous.err, AllOf(HasSubstr("UNAVAILABLE"), HasSubstr("tls: on")));
  // A certificate the policy does not know: refused by name.
  RunResult stranger = Cli({"--cacert", Pem("ca.crt"), "--cert", Pem("stranger.crt"), "--key",
                            Pem("stranger.key"), "list"});
  EXPECT_EQ(stranger.status, ExitedWith(3)) << stranger.err;
  EXPECT_THAT(stranger.err, AllOf(HasSubstr("PERMISSION_DENIED"), HasSubstr("dns:stranger.test")));
}
#endif  // BLUEPRINT_SYNC_CLI

TEST_F(SecurityE2eTest, FailedHandshakesAreRateLimitedJsonLogLines) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartSecureServer({}));
  const absl::Time start = absl::Now();
  constexpr int kAttempts = 300;
  for (int i = 0; i < kAttempts; ++i) {
    const int fd = ConnectAndSend(server_address(), "this is not a TLS ClientHello\r\n\r\n");
    ASSERT_GE(fd, 0) << "connection " << i;
    char buf[256];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    close(fd);
  }
  // The server still serves, and has said something about the handshakes.
  auto health = HealthCheck(TlsChannel("writer"), "", absl::Seconds(10));
  BPS_ASSERT_OK(health.status());
  absl::StatusOr<std::string> line = server_process().WaitForStdoutLine(
      [](absl::string_view l) { return absl::StrContains(l, R"("source":"grpc")"); },
      absl::Seconds(10));
  BPS_ASSERT_OK(line.status());
  const absl::Duration elapsed = absl::Now() - start;
  int grpc_lines = 0;
  for (const std::string& l : server_process().StdoutLines()) {
    if (!absl::StrContains(l, R"("source":"grpc")")) continue;
    ++grpc_lines;
    rapidjson::Document d;
    d.Parse(l.c_str(), l.size());
    EXPECT_FALSE(d.HasParseError()) << l;
  }
  // The default limit: a burst of 20, then 5 a second.
  EXPECT_LE(grpc_lines, 20 + 5 * (absl::ToInt64Seconds(elapsed) + 1))
      << "over " << elapsed << " for " << kAttempts << " failed handshakes";
  EXPECT_LT(grpc_lines, kAttempts);
  EXPECT_EQ(server_process().Stderr(), "") << "gRPC wrote past the JSON log";
}

TEST_F(SecurityE2eTest, PlaintextHealthPortMirrorsTheMainServer) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartSecureServer({"--health-listen", "127.0.0.1:0", "--drain-timeout", "10s",
                                   "--authz-policy", temp_dir() + "/policy.json"}));
  auto address = HealthAddress();
  BPS_ASSERT_OK(address.status());
  ASSERT_TRUE(absl::StartsWith(*address, "127.0.0.1:")) << *address;
  ASSERT_NE(*address, "127.0.0.1:0");
  ASSERT_NE(*address, server_address());
  const auto plain = grpc::CreateChannel(*address, grpc::InsecureChannelCredentials());

  // The same names as the main server, SERVING, without any certificate.
  for (const char* name : {"", "blueprintsync.v1.BlueprintSync", "liveness", "readiness"}) {
    auto on_health_port = HealthCheck(plain, name, absl::Seconds(5));
    BPS_ASSERT_OK(on_health_port.status());
    EXPECT_EQ(*on_health_port, kServing) << name;
    auto on_main_port = HealthCheck(TlsChannel("reader"), name, absl::Seconds(5));
    BPS_ASSERT_OK(on_main_port.status());
    EXPECT_EQ(*on_main_port, kServing) << name;
  }
  auto unknown = HealthCheck(plain, "no-such-service", absl::Seconds(5));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound) << unknown.status();

  // Health only: neither the API nor reflection answers there.
  grpc::Status s = ListAs(plain);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << s.error_message();
  {
    // Any method name works for this: the port must not know reflection's.
    grpc::TemplatedGenericStub<grpc::health::v1::HealthCheckRequest,
                               grpc::health::v1::HealthCheckResponse>
        generic(plain);
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    absl::Notification done;
    grpc::Status reflection;
    generic.UnaryCall(&context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                      grpc::StubOptions(), &request, &response, [&](grpc::Status r) {
                        reflection = std::move(r);
                        done.Notify();
                      });
    done.WaitForNotification();
    EXPECT_EQ(reflection.error_code(), grpc::StatusCode::UNIMPLEMENTED)
        << reflection.error_message();
  }

  // Shutdown: while the server drains a slow SyncBlueprint, the health port
  // already says NOT_SERVING, like the main port.
  BPS_ASSERT_OK(
      admin().SetFaults(R"({"rules":[{"action":"SyncBlueprint","fault":"latency","phase":"before",)"
                        R"("latency_ms":4000,"code":"Latency","count":1}]})"));
  std::atomic<bool> sync_done{false};
  grpc::Status slow;
  SyncJob slow_job;
  const auto writer = TlsChannel("writer");
  std::thread caller([&] {
    slow = SyncAs(writer, &slow_job);
    sync_done = true;
  });
  // The call is in flight once the emulator has it.
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (absl::Now() < until) {
    auto stats = admin().Stats();
    if (stats.ok() && stats->Action("SyncBlueprint").received > 0) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  BPS_ASSERT_OK(server_process().Signal(SIGTERM));
  bool saw_not_serving = false;
  std::string last;
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (absl::Now() < deadline && !saw_not_serving) {
    auto h = HealthCheck(plain, "readiness", absl::Seconds(2));
    last = h.ok() ? absl::StrCat("status ", *h) : h.status().ToString();
    if (h.ok() && *h == kNotServing) saw_not_serving = true;
    if (!h.ok()) break;  // port closed: too late to see the draining state
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(saw_not_serving) << "health port never said NOT_SERVING while draining; last: "
                               << last << "; SyncBlueprint done: " << sync_done.load();
  caller.join();
  auto exit = server_process().WaitForExit(absl::Seconds(30));
  BPS_ASSERT_OK(exit.status());
  EXPECT_EQ(*exit, ExitedWith(0)) << exit->ToString();
  // The health port closes with the server.
  EXPECT_FALSE(HealthCheck(plain, "", absl::Seconds(2)).ok());
}

TEST_F(SecurityE2eTest, RenewedServerCertificateIsServedWithoutRestart) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartSecureServer({"--tls-reload-interval", "1s"}));
  const std::string v1 = pairs_["server"].cert;
  const std::string v2 = pairs_["server2"].cert;
  ASSERT_NE(v1, v2);

  auto before = PresentedCertificate();
  BPS_ASSERT_OK(before.status());
  EXPECT_EQ(*before, v1) << "the server does not present the certificate it was started with";

  // Renewal: new files, swapped in atomically, as the kubelet does.
  ASSERT_NO_FATAL_FAILURE(PublishServerPair("server2", "..v2"));
  EXPECT_EQ(ReadFile(tls_dir_ + "/tls.crt"), v2);

  std::string seen = *before;
  absl::Status last = absl::OkStatus();
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    auto now = PresentedCertificate();
    last = now.status();
    if (now.ok()) seen = *now;
    if (seen == v2) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(seen, v2) << "still the old certificate 20 s after the renewal (reload interval 1 s); "
                         "last error: "
                      << last;
  // The server kept running and still works.
  EXPECT_FALSE(server_process().TryWait().has_value());
  int listed = -1;
  grpc::Status s = ListAs(TlsChannel("writer"), &listed);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

TEST_F(SecurityE2eTest, BadTlsOrPolicySettingsStopTheStart) {
  BPS_ASSERT_OK(StartEmulator());
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  WriteFile(temp_dir() + "/bad-policy.json", R"({"writers": ["writer.test"]})");
  const std::vector<Case> cases = {
      // The writer's key with the server's certificate.
      {{"--tls-cert", pki_ + "/server.crt", "--tls-key", pki_ + "/writer.key"},
       "--tls-key \"" + pki_ + "/writer.key\" does not belong to the first certificate"},
      {{"--tls-cert", pki_ + "/server.crt"}, "--tls-cert and --tls-key must be set together"},
      {{"--tls-cert", pki_ + "/server.crt", "--tls-key", pki_ + "/server.key", "--tls-client-ca",
        pki_ + "/missing.crt"},
       "--tls-client-ca \"" + pki_ + "/missing.crt\": cannot read"},
      {{"--tls-cert", pki_ + "/server.crt", "--tls-key", pki_ + "/server.key", "--authz-policy",
        temp_dir() + "/policy.json"},
       "--authz-policy needs --tls-client-ca"},
      {{"--tls-cert", pki_ + "/server.crt", "--tls-key", pki_ + "/server.key", "--tls-client-ca",
        pki_ + "/ca.crt", "--authz-policy", temp_dir() + "/bad-policy.json"},
       "writers[0] \"writer.test\" is not"},
      // A port that is taken (the emulator's).
      {{"--health-listen", emulator_url().substr(emulator_url().rfind('/') + 1)},
       "--health-listen"},
  };
  for (const Case& c : cases) {
    ChildProcessOptions o;
    o.argv = {BLUEPRINT_SYNCD,         "--listen",    "127.0.0.1:0",
              "--metrics-listen=",     "--store",     absl::StrCat("sqlite:", store_path()),
              "--lighthouse-endpoint", emulator_url()};
    o.argv.insert(o.argv.end(), c.args.begin(), c.args.end());
    o.unset_env = {"BLUEPRINT_SYNC_*", "TENCENTCLOUD_*"};
    auto r = RunToCompletion(std::move(o), absl::Seconds(20));
    BPS_ASSERT_OK(r.status());
    EXPECT_EQ(r->status, ExitedWith(2)) << c.want;
    const std::string output = r->out + r->err;
    EXPECT_THAT(output, AllOf(HasSubstr(c.want), Not(HasSubstr("PRIVATE KEY")))) << c.want;
    // Checked without a matcher, so a failure does not print the fragment either.
    EXPECT_EQ(output.find(SecretFragment(pairs_["writer"].key)), std::string::npos)
        << c.want << ": the output contains the private key";
    EXPECT_THAT(output, Not(HasSubstr("\"msg\":\"serving\""))) << c.want;
  }
}

// Field limits: a request near the message-size limit with hundreds of
// thousands of destination entries is rejected at once with one bounded
// error, instead of one violation (and a duplicate search) per entry.
TEST_F(SecurityE2eTest, HugeDestinationListIsRejectedCheaply) {
  BPS_ASSERT_OK(StartEmulator());
  BPS_ASSERT_OK(StartServer());
  v1::SyncBlueprintRequest request = MakeRequest("ap-guangzhou", "lhbp-gzbase01", {});
  // Distinct values (base 36), so a per-entry duplicate search would be quadratic.
  constexpr int kEntries = 140000;
  for (int i = 0; i < kEntries; ++i) {
    std::string v;
    for (int n = i; n > 0 || v.empty(); n /= 36)
      v += "0123456789abcdefghijklmnopqrstuvwxyz"[n % 36];
    request.add_destination_regions(v);
  }
  ASSERT_LT(request.ByteSizeLong(), 1048576u);
  SyncJob job;
  const absl::Time start = absl::Now();
  grpc::Status s = Sync(request, &job, absl::Seconds(20));
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message().substr(0, 300);
  EXPECT_THAT(s.error_message(),
              HasSubstr(absl::StrCat("destination_regions lists ", kEntries, " regions")));
  EXPECT_LT(s.error_message().size(), 4096u);
  RichError rich = ParseRichError(s);
  ASSERT_TRUE(rich.bad_request.has_value());
  EXPECT_LE(rich.bad_request->field_violations_size(), 25);
  EXPECT_THAT(rich.violation_fields(), ::testing::Contains("destination_regions"));
  EXPECT_LT(took, absl::Seconds(5)) << "validation took " << took;
  auto stats = admin().Stats();
  BPS_ASSERT_OK(stats.status());
  EXPECT_EQ(stats->Action("SyncBlueprint").received, 0);
}

}  // namespace
}  // namespace blueprintsync::testing
