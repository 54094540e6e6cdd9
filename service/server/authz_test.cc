// AuthzPolicy: the policy file's grammar (every mistake is a start-up error
// naming the entry) and the rule: writers may call everything, readers only
// the reads, anybody else is PERMISSION_DENIED, no certificate is
// UNAUTHENTICATED; identities match by kind, never across kinds.
#include "service/server/authz.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blueprintsync::server {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

Peer Cert(std::vector<std::string> dns, std::vector<std::string> uris = {}, std::string cn = "") {
  Peer p;
  p.authenticated = true;
  p.dns_names = std::move(dns);
  p.uris = std::move(uris);
  p.common_name = std::move(cn);
  return p;
}

AuthzPolicy MustParse(const std::string& json) {
  auto p = AuthzPolicy::Parse(json, "policy.json");
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : AuthzPolicy();
}

constexpr char kPolicy[] = R"({
  "writers": ["dns:Builder.CI.svc", "uri:spiffe://cluster.local/ns/ci/sa/release", "cn:release-bot"],
  "readers": ["dns:dashboard.ops.svc", "cn:oncall"]
})";

TEST(AuthzPolicyTest, WritersMayCallEverything) {
  const AuthzPolicy p = MustParse(kPolicy);
  EXPECT_EQ(p.writers(), 3u);
  EXPECT_EQ(p.readers(), 2u);
  for (const Peer& writer :
       {Cert({"builder.ci.svc"}),  // DNS names compare case-insensitively
        Cert({"other.example", "BUILDER.ci.SVC"}),
        Cert({}, {"spiffe://cluster.local/ns/ci/sa/release"}), Cert({}, {}, "release-bot")}) {
    EXPECT_TRUE(p.Check("SyncBlueprint", Access::kWrite, writer).ok()) << DescribePeer(writer);
    EXPECT_TRUE(p.Check("GetSyncJob", Access::kRead, writer).ok()) << DescribePeer(writer);
  }
}

TEST(AuthzPolicyTest, ReadersMayOnlyRead) {
  const AuthzPolicy p = MustParse(kPolicy);
  for (const Peer& reader : {Cert({"dashboard.ops.svc"}), Cert({}, {}, "oncall")}) {
    EXPECT_TRUE(p.Check("ListSyncJobs", Access::kRead, reader).ok());
    absl::Status s = p.Check("SyncBlueprint", Access::kWrite, reader);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(std::string(s.message()),
                AllOf(HasSubstr("SyncBlueprint"), HasSubstr("only writers"),
                      HasSubstr("it is a reader"), HasSubstr(DescribePeer(reader))));
  }
}

TEST(AuthzPolicyTest, StrangersAreDeniedEverything) {
  const AuthzPolicy p = MustParse(kPolicy);
  const Peer stranger = Cert({"evil.example"}, {"spiffe://cluster.local/ns/x/sa/y"}, "mallory");
  for (auto [method, access] :
       {std::pair{"SyncBlueprint", Access::kWrite}, std::pair{"GetSyncJob", Access::kRead},
        std::pair{"WatchSyncJob", Access::kRead}}) {
    absl::Status s = p.Check(method, access, stranger);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << method;
    EXPECT_THAT(std::string(s.message()),
                AllOf(HasSubstr(method), HasSubstr("dns:evil.example"), HasSubstr("cn:mallory"),
                      HasSubstr("uri:spiffe://cluster.local/ns/x/sa/y")));
  }
}

TEST(AuthzPolicyTest, KindsDoNotCrossMatch) {
  const AuthzPolicy p = MustParse(kPolicy);
  // The writer's DNS name as a CN or a URI, the writer CN as a DNS name: no.
  for (const Peer& peer : {Cert({}, {}, "builder.ci.svc"), Cert({}, {"builder.ci.svc"}),
                           Cert({"release-bot"}), Cert({"spiffe://cluster.local/ns/ci/sa/release"}),
                           // URIs are exact, prefixes and case changes do not match.
                           Cert({}, {"spiffe://cluster.local/ns/ci/sa/release/extra"}),
                           Cert({}, {"SPIFFE://cluster.local/ns/ci/sa/release"}),
                           Cert({}, {}, "Release-Bot"), Cert({"builder.ci.svc.evil.example"})}) {
    EXPECT_EQ(p.Check("SyncBlueprint", Access::kWrite, peer).code(),
              absl::StatusCode::kPermissionDenied)
        << DescribePeer(peer);
  }
}

TEST(AuthzPolicyTest, NoVerifiedCertificateIsUnauthenticated) {
  const AuthzPolicy p = MustParse(R"({"readers": ["*"], "writers": ["*"]})");
  Peer anonymous;                            // e.g. TLS without a client certificate
  anonymous.dns_names = {"builder.ci.svc"};  // never trusted without verification
  for (Access a : {Access::kRead, Access::kWrite}) {
    absl::Status s = p.Check("GetSyncJob", a, anonymous);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
    EXPECT_THAT(std::string(s.message()), HasSubstr("GetSyncJob"));
  }
}

TEST(AuthzPolicyTest, StarMeansAnyVerifiedCertificate) {
  const AuthzPolicy p = MustParse(R"({"writers": ["cn:admin"], "readers": ["*"]})");
  EXPECT_TRUE(p.Check("ListSyncJobs", Access::kRead, Cert({"anyone.example"})).ok());
  EXPECT_EQ(p.Check("SyncBlueprint", Access::kWrite, Cert({"anyone.example"})).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(p.Check("SyncBlueprint", Access::kWrite, Cert({}, {}, "admin")).ok());
}

TEST(AuthzPolicyTest, EmptyWritersMeansNobodyMaySync) {
  const AuthzPolicy p = MustParse(R"({"writers": [], "readers": ["*"]})");
  EXPECT_EQ(p.Check("SyncBlueprint", Access::kWrite, Cert({"a.example"}, {}, "admin")).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(AuthzPolicyTest, MistakesAreStartUpErrorsNamingTheEntry) {
  struct Case {
    const char* json;
    const char* want;
  };
  for (const Case& c : std::vector<Case>{
           {"", "not JSON"},
           {"[\"dns:a\"]", "must be a JSON object"},
           {R"({"writer": ["dns:a"]})", "unknown key \"writer\""},
           {R"({"writers": "dns:a"})", "writers must be a list"},
           {R"({"writers": [1]})", "writers[0] must be a string"},
           {R"({"writers": ["dns:a", "DNS:b"]})", "writers[1] \"DNS:b\" is not"},
           {R"({"readers": ["spiffe://x"]})", "readers[0] \"spiffe://x\" is not"},
           {R"({"readers": ["dns:"]})", "readers[0] \"dns:\" names nobody"},
           {R"({"writers": [], "readers": []})", "allows nobody"},
           {"{}", "allows nobody"},
       }) {
    auto p = AuthzPolicy::Parse(c.json, "/etc/authz/policy.json");
    ASSERT_FALSE(p.ok()) << c.json;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(p.status().message()),
                AllOf(HasSubstr("--authz-policy \"/etc/authz/policy.json\""), HasSubstr(c.want)))
        << c.json;
  }
}

TEST(AuthzPolicyTest, LoadReportsAMissingFile) {
  auto p = AuthzPolicy::Load("/nonexistent/policy.json");
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(
      std::string(p.status().message()),
      AllOf(HasSubstr("--authz-policy \"/nonexistent/policy.json\""), HasSubstr("cannot read")));
}

TEST(DescribePeerTest, BoundedAndWithoutControlCharacters) {
  Peer p = Cert({"a.example", "b.example", "c.example", "d.example"}, {}, "cn\nwith newline");
  const std::string d = DescribePeer(p);
  EXPECT_THAT(d, AllOf(HasSubstr("dns:a.example"), HasSubstr("(+2 more)"),
                       Not(HasSubstr("d.example")), Not(HasSubstr("\n"))));
  EXPECT_EQ(DescribePeer(Peer{}), "an unauthenticated caller");
  EXPECT_LT(DescribePeer(Cert({std::string(10000, 'x')})).size(), 200u);
}

TEST(CallerIdentityTest, TheFirstIdentityInTheOrderPoliciesAreDescribed) {
  EXPECT_EQ(
      CallerIdentity(Cert(
          {"a.example"},
          {"spiffe://cluster/ns/web/sa/deployer", "spiffe://cluster/ns/web/sa/other"}, "deployer")),
      "uri:spiffe://cluster/ns/web/sa/deployer");
  // DNS names match policies case-insensitively, so one spelling is recorded.
  EXPECT_EQ(CallerIdentity(Cert({"Builder.CI.svc", "b.example"}, {}, "builder")),
            "dns:builder.ci.svc");
  EXPECT_EQ(CallerIdentity(Cert({}, {}, "Release-Bot")), "cn:Release-Bot");
}

TEST(CallerIdentityTest, EmptyWithoutAVerifiedIdentity) {
  EXPECT_EQ(CallerIdentity(Peer{}), "");
  EXPECT_EQ(CallerIdentity(Cert({})), "");
  Peer unverified = Cert({"a.example"});
  unverified.authenticated = false;
  EXPECT_EQ(CallerIdentity(unverified), "");
}

TEST(AuthzPolicyTest, CancelRetryAndDeleteAreForWritersOnly) {
  const AuthzPolicy p = MustParse(kPolicy);
  for (const char* method : {"CancelSyncJob", "RetrySyncJob", "DeleteSyncJob"}) {
    EXPECT_TRUE(p.Check(method, Access::kWrite, Cert({"builder.ci.svc"})).ok()) << method;
    const absl::Status s = p.Check(method, Access::kWrite, Cert({"dashboard.ops.svc"}));
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << method;
    EXPECT_THAT(std::string(s.message()), AllOf(HasSubstr(method), HasSubstr("it is a reader")));
  }
}

TEST(AuthzPolicyTest, PolicyChangesAreForWritersAndPolicyReadsForReadersToo) {
  const AuthzPolicy p = MustParse(kPolicy);
  for (const char* method : {"CreateSyncPolicy", "UpdateSyncPolicy", "DeleteSyncPolicy"}) {
    EXPECT_TRUE(p.Check(method, Access::kWrite, Cert({"builder.ci.svc"})).ok()) << method;
    const absl::Status s = p.Check(method, Access::kWrite, Cert({"dashboard.ops.svc"}));
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << method;
    EXPECT_THAT(std::string(s.message()), AllOf(HasSubstr(method), HasSubstr("it is a reader")));
  }
  for (const char* method : {"GetSyncPolicy", "ListSyncPolicies"}) {
    EXPECT_TRUE(p.Check(method, Access::kRead, Cert({"dashboard.ops.svc"})).ok()) << method;
    EXPECT_TRUE(p.Check(method, Access::kRead, Cert({"builder.ci.svc"})).ok()) << method;
  }
}

TEST(PeerFromAuthContextTest, NoContextIsUnauthenticated) {
  EXPECT_FALSE(PeerFromAuthContext(nullptr).authenticated);
}

}  // namespace
}  // namespace blueprintsync::server
