// CheckTlsFiles / TlsFilesFromFlags: partial or wrong TLS settings stop the
// start with one line naming the flag, and never echo file contents. (Good
// certificates, key mismatches and reloading are exercised end to end in
// tests/e2e/security_e2e_test.cc with certificates generated at test time.)
#include "service/server/tls_config.h"

#include <fstream>
#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blueprintsync::server {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

std::string WriteFile(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::string Error(const TlsFiles& f) {
  absl::Status s = CheckTlsFiles(f);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  const std::string m(s.message());
  EXPECT_EQ(m.find('\n'), std::string::npos) << "not one line: " << m;
  return m;
}

TEST(TlsConfigTest, OffByDefault) {
  TlsFiles f;
  EXPECT_TRUE(CheckTlsFiles(f).ok());
  EXPECT_EQ(f.Mode(), "off");
  EXPECT_NE(MakeServerCredentials(f), nullptr);
}

TEST(TlsConfigTest, CertAndKeyGoTogether) {
  TlsFiles f;
  f.cert_file = "/etc/tls/tls.crt";
  EXPECT_THAT(Error(f), AllOf(HasSubstr("--tls-cert and --tls-key must be set together"),
                              HasSubstr("only --tls-cert")));
  f = TlsFiles{};
  f.key_file = "/etc/tls/tls.key";
  EXPECT_THAT(Error(f), HasSubstr("only --tls-key"));
}

TEST(TlsConfigTest, ClientCaNeedsAServerIdentity) {
  TlsFiles f;
  f.client_ca_file = "/etc/tls/ca.crt";
  EXPECT_THAT(Error(f), HasSubstr("--tls-client-ca needs --tls-cert and --tls-key"));
}

TEST(TlsConfigTest, UnreadableAndNonPemFilesNameTheFlag) {
  TlsFiles f;
  f.cert_file = "/nonexistent/tls.crt";
  f.key_file = "/nonexistent/tls.key";
  EXPECT_THAT(Error(f),
              AllOf(HasSubstr("--tls-cert \"/nonexistent/tls.crt\""), HasSubstr("cannot read")));

  f.cert_file = WriteFile("not-a-cert.pem", "hello\n");
  EXPECT_THAT(Error(f), AllOf(HasSubstr("--tls-cert"), HasSubstr("no PEM certificate")));

  // A key where the certificate belongs: reported, and the key never echoed.
  const std::string key_text =
      "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n";
  f.cert_file = WriteFile("key-as-cert.pem", key_text);
  EXPECT_THAT(Error(f), AllOf(HasSubstr("no PEM certificate"), Not(HasSubstr("TOPSECRET"))));
}

TEST(TlsConfigTest, FlagsAndEnvironment) {
  std::map<std::string, std::string> env = {{"BLUEPRINT_SYNC_TLS_KEY", "/etc/tls/tls.key"}};
  Flags flags(
      {
          {"tls-cert", "BLUEPRINT_SYNC_TLS_CERT", "", ""},
          {"tls-key", "BLUEPRINT_SYNC_TLS_KEY", "", ""},
          {"tls-client-ca", "BLUEPRINT_SYNC_TLS_CLIENT_CA", "", ""},
          {"tls-reload-interval", "BLUEPRINT_SYNC_TLS_RELOAD_INTERVAL", "60s", ""},
      },
      [&env](const std::string& name) -> std::optional<std::string> {
        auto it = env.find(name);
        if (it == env.end()) return std::nullopt;
        return it->second;
      });
  const char* argv[] = {"blueprint-syncd", "--tls-reload-interval", "10s"};
  ASSERT_TRUE(flags.Parse(3, argv).ok());
  auto files = TlsFilesFromFlags(flags);
  ASSERT_FALSE(files.ok());
  EXPECT_THAT(std::string(files.status().message()), HasSubstr("only --tls-key"));

  const char* argv2[] = {"blueprint-syncd", "--tls-reload-interval", "0s"};
  Flags flags2(
      {
          {"tls-cert", "", "", ""},
          {"tls-key", "", "", ""},
          {"tls-client-ca", "", "", ""},
          {"tls-reload-interval", "", "60s", ""},
      },
      [](const std::string&) { return std::nullopt; });
  ASSERT_TRUE(flags2.Parse(3, argv2).ok());
  files = TlsFilesFromFlags(flags2);
  ASSERT_FALSE(files.ok());
  EXPECT_THAT(std::string(files.status().message()), HasSubstr("--tls-reload-interval"));
}

}  // namespace
}  // namespace blueprintsync::server
