#include "client/tls_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace blueprintsync::cli {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// Not a real key: only its shape matters to the loader.
constexpr char kFakeKey[] =
    "-----BEGIN PRIVATE KEY-----\nU0VDUkVULUtFWS1NQVRFUklBTA==\n-----END PRIVATE KEY-----\n";
constexpr char kFakeCert[] = "-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n";

class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/bps_tls_files_XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    for (const auto& f : files_) std::remove(f.c_str());
    rmdir(dir_.c_str());
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    files_.push_back(path);
    return path;
  }
  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(TlsFilesTest, NoFlagsMeansPlaintext) {
  auto m = LoadTlsMaterial(TlsFlags{});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE(m->enabled);
}

TEST_F(TlsFilesTest, AnyFlagTurnsTlsOn) {
  TlsFlags only_tls;
  only_tls.tls = true;
  auto m = LoadTlsMaterial(only_tls);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->enabled);
  EXPECT_EQ(m->root_pem, "");  // the system's roots
  TlsFlags name_only;
  name_only.server_name = "bps.test";
  m = LoadTlsMaterial(name_only);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->enabled);
  EXPECT_EQ(m->server_name, "bps.test");
}

TEST_F(TlsFilesTest, ReadsCaCertAndKey) {
  TlsFlags f;
  f.cacert = Write("ca.crt", kFakeCert);
  f.cert = Write("tls.crt", kFakeCert);
  f.key = Write("tls.key", kFakeKey);
  auto m = LoadTlsMaterial(f);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->root_pem, kFakeCert);
  EXPECT_EQ(m->cert_pem, kFakeCert);
  EXPECT_EQ(m->key_pem, kFakeKey);
}

TEST_F(TlsFilesTest, ErrorsNameTheFlagAndNeverTheKey) {
  TlsFlags cert_only;
  cert_only.cert = Write("tls.crt", kFakeCert);
  auto m = LoadTlsMaterial(cert_only);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(),
              HasSubstr("--cert and --key: give both or neither (only --cert"));

  TlsFlags key_only;
  key_only.key = Write("tls.key", kFakeKey);
  m = LoadTlsMaterial(key_only);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("(only --key is set)"));

  TlsFlags missing;
  missing.cacert = dir_ + "/nope.crt";
  m = LoadTlsMaterial(missing);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(),
              AllOf(HasSubstr("--cacert: "), HasSubstr("nope.crt"), HasSubstr("cannot read")));

  // A key given where the CA belongs (an easy mix-up): named, not shown.
  TlsFlags swapped;
  swapped.cacert = Write("swapped.pem", kFakeKey);
  m = LoadTlsMaterial(swapped);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(),
              AllOf(HasSubstr("--cacert: "), HasSubstr("not a PEM CA certificate bundle"),
                    Not(HasSubstr("U0VDUkVU")), Not(HasSubstr("BEGIN PRIVATE KEY"))));

  TlsFlags not_a_key;
  not_a_key.cert = Write("c.crt", kFakeCert);
  not_a_key.key = Write("k.crt", kFakeCert);
  m = LoadTlsMaterial(not_a_key);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(),
              AllOf(HasSubstr("--key: "), HasSubstr("not a PEM private key")));

  TlsFlags encrypted;
  encrypted.cert = Write("e.crt", kFakeCert);
  encrypted.key = Write("e.key",
                        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nU0VDUkVU\n"
                        "-----END ENCRYPTED PRIVATE KEY-----\n");
  m = LoadTlsMaterial(encrypted);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(),
              AllOf(HasSubstr("--key: "), HasSubstr("encrypted"), Not(HasSubstr("U0VDUkVU"))));

  TlsFlags directory;
  directory.cacert = dir_;
  m = LoadTlsMaterial(directory);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("--cacert: "));
}

}  // namespace
}  // namespace blueprintsync::cli
