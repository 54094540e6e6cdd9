#include "service/tencent/credentials.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/common/log.h"
#include "service/tencent/cloud_credentials.h"

namespace blueprintsync::tencent {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// Recognizable values: an error message containing one of them is a leak.
constexpr char kSecretKey[] = "SECRETKEY-MUST-NOT-LEAK";
constexpr char kToken[] = "TOKEN-MUST-NOT-LEAK";
constexpr char kSecretId[] = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";

void ExpectNoSecrets(const absl::Status& status) {
  EXPECT_THAT(
      std::string(status.message()),
      AllOf(Not(HasSubstr("MUST-NOT-LEAK")), Not(HasSubstr(kSecretKey)), Not(HasSubstr(kToken))));
}

class FakeEnv {
 public:
  FakeEnv& Set(const std::string& name, const std::string& value) {
    vars_[name] = value;
    return *this;
  }
  EnvCredentialProvider::Getenv Getenv() const {
    return [vars = vars_](const std::string& name) -> std::optional<std::string> {
      auto it = vars.find(name);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
  }

 private:
  std::map<std::string, std::string> vars_;
};

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string tmpl = absl::StrCat(base != nullptr ? base : "/tmp", "/bps_credentials_XXXXXX");
    char* made = ::mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    for (const std::string& file : files_) {
      ::chmod(file.c_str(), 0600);
      ::unlink(file.c_str());
      ::rmdir(file.c_str());
    }
    ::rmdir(path_.c_str());
  }
  std::string Write(const std::string& name, const std::string& contents) {
    const std::string file = absl::StrCat(path_, "/", name);
    std::ofstream(file, std::ios::binary) << contents;
    files_.push_back(file);
    return file;
  }
  std::string Mkdir(const std::string& name) {
    const std::string dir = absl::StrCat(path_, "/", name);
    ::mkdir(dir.c_str(), 0700);
    files_.push_back(dir);
    return dir;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

// ---------------------------------------------------------------- MaskSecretId

TEST(MaskSecretIdTest, ShowsAtMostFourCharactersAtEachEnd) {
  EXPECT_EQ(MaskSecretId(kSecretId), "AKID****MPLE");
  EXPECT_EQ(MaskSecretId("AKID1234567890"), "AKI****890");  // 14 chars: a quarter each side
  EXPECT_EQ(MaskSecretId("ABCDEFGH"), "AB****GH");
  EXPECT_EQ(MaskSecretId("ABC"), "****");
  EXPECT_EQ(MaskSecretId(""), "****");
}

TEST(MaskSecretIdTest, NeverRevealsMostOfTheId) {
  for (size_t n = 0; n <= 40; ++n) {
    const std::string id(n, 'x');
    const std::string masked = MaskSecretId(id);
    const size_t shown = masked.size() - 4;
    EXPECT_LE(shown, 8u);
    EXPECT_LE(shown, n / 2) << n;
  }
}

// ---------------------------------------------------------------- Static

TEST(StaticCredentialProviderTest, ReturnsTheTriple) {
  Credentials c;
  c.secret_id = kSecretId;
  c.secret_key = kSecretKey;
  c.token = kToken;
  c.expiry = absl::FromUnixSeconds(1700000000);
  StaticCredentialProvider provider(c);
  EXPECT_EQ(provider.Name(), "static");
  absl::StatusOr<Credentials> got = provider.GetCredentials();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->secret_id, kSecretId);
  EXPECT_EQ(got->secret_key, kSecretKey);
  EXPECT_EQ(got->token, kToken);
  EXPECT_EQ(got->expiry, absl::FromUnixSeconds(1700000000));
}

TEST(StaticCredentialProviderTest, EmptyIdOrKeyIsAnError) {
  Credentials no_key;
  no_key.secret_id = kSecretId;
  no_key.token = kToken;
  absl::StatusOr<Credentials> got = StaticCredentialProvider(no_key).GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("secret_key"));

  Credentials no_id;
  no_id.secret_key = kSecretKey;
  got = StaticCredentialProvider(no_id).GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("secret_id"));
  ExpectNoSecrets(got.status());
}

// ---------------------------------------------------------------- Env

TEST(EnvCredentialProviderTest, IdAndKey) {
  FakeEnv env;
  env.Set("TENCENTCLOUD_SECRET_ID", kSecretId).Set("TENCENTCLOUD_SECRET_KEY", kSecretKey);
  EnvCredentialProvider provider(env.Getenv());
  EXPECT_EQ(provider.Name(), "environment");
  absl::StatusOr<Credentials> got = provider.GetCredentials();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->secret_id, kSecretId);
  EXPECT_EQ(got->secret_key, kSecretKey);
  EXPECT_EQ(got->token, "");
  EXPECT_EQ(got->expiry, absl::InfiniteFuture());
}

TEST(EnvCredentialProviderTest, SurroundingWhitespaceIsTrimmed) {
  FakeEnv env;
  env.Set("TENCENTCLOUD_SECRET_ID", absl::StrCat(" ", kSecretId, "\n"))
      .Set("TENCENTCLOUD_SECRET_KEY", absl::StrCat(kSecretKey, "\r\n"));
  absl::StatusOr<Credentials> got = EnvCredentialProvider(env.Getenv()).GetCredentials();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->secret_id, kSecretId);
  EXPECT_EQ(got->secret_key, kSecretKey);
}

TEST(EnvCredentialProviderTest, TokenVariablesInPriorityOrder) {
  struct Case {
    std::map<std::string, std::string> tokens;
    std::string expected;
  };
  const Case cases[] = {
      {{{"TENCENTCLOUD_SESSION_TOKEN", "a"}}, "a"},
      {{{"TENCENTCLOUD_TOKEN", "b"}}, "b"},
      {{{"TENCENTCLOUD_SECURITY_TOKEN", "c"}}, "c"},
      {{{"TENCENTCLOUD_SESSION_TOKEN", "a"},
        {"TENCENTCLOUD_TOKEN", "b"},
        {"TENCENTCLOUD_SECURITY_TOKEN", "c"}},
       "a"},
      {{{"TENCENTCLOUD_TOKEN", "b"}, {"TENCENTCLOUD_SECURITY_TOKEN", "c"}}, "b"},
      // First *non-empty* one wins.
      {{{"TENCENTCLOUD_SESSION_TOKEN", ""}, {"TENCENTCLOUD_SECURITY_TOKEN", "c"}}, "c"},
      {{{"TENCENTCLOUD_SESSION_TOKEN", ""}, {"TENCENTCLOUD_TOKEN", ""}}, ""},
  };
  for (const Case& c : cases) {
    FakeEnv env;
    env.Set("TENCENTCLOUD_SECRET_ID", kSecretId).Set("TENCENTCLOUD_SECRET_KEY", kSecretKey);
    for (const auto& [name, value] : c.tokens) env.Set(name, value);
    absl::StatusOr<Credentials> got = EnvCredentialProvider(env.Getenv()).GetCredentials();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->token, c.expected);
  }
}

TEST(EnvCredentialProviderTest, NothingSetIsNotFound) {
  FakeEnv env;
  env.Set("TENCENTCLOUD_SESSION_TOKEN", kToken);  // a lone token does not count
  absl::StatusOr<Credentials> got = EnvCredentialProvider(env.Getenv()).GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(got.status().message(), "TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY not set");
  ExpectNoSecrets(got.status());
}

TEST(EnvCredentialProviderTest, OnlyIdSetNamesTheMissingKey) {
  FakeEnv env;
  env.Set("TENCENTCLOUD_SECRET_ID", kSecretId).Set("TENCENTCLOUD_TOKEN", kToken);
  absl::StatusOr<Credentials> got = EnvCredentialProvider(env.Getenv()).GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("TENCENTCLOUD_SECRET_KEY is not set"));
  EXPECT_THAT(std::string(got.status().message()), Not(HasSubstr(kSecretId)));
  ExpectNoSecrets(got.status());
}

TEST(EnvCredentialProviderTest, OnlyKeySetNamesTheMissingId) {
  FakeEnv env;
  env.Set("TENCENTCLOUD_SECRET_KEY", kSecretKey);
  absl::StatusOr<Credentials> got = EnvCredentialProvider(env.Getenv()).GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("TENCENTCLOUD_SECRET_ID is not set"));
  ExpectNoSecrets(got.status());
}

TEST(EnvCredentialProviderTest, SetButEmptyIsAnErrorNotNotFound) {
  {
    FakeEnv env;
    env.Set("TENCENTCLOUD_SECRET_ID", "").Set("TENCENTCLOUD_SECRET_KEY", kSecretKey);
    absl::StatusOr<Credentials> got = EnvCredentialProvider(env.Getenv()).GetCredentials();
    EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(got.status().message()),
                HasSubstr("TENCENTCLOUD_SECRET_ID is set but empty"));
    ExpectNoSecrets(got.status());
  }
  {
    FakeEnv env;
    env.Set("TENCENTCLOUD_SECRET_ID", kSecretId).Set("TENCENTCLOUD_SECRET_KEY", "  ");
    absl::StatusOr<Credentials> got = EnvCredentialProvider(env.Getenv()).GetCredentials();
    EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(got.status().message()),
                HasSubstr("TENCENTCLOUD_SECRET_KEY is set but empty"));
  }
  {
    FakeEnv env;
    env.Set("TENCENTCLOUD_SECRET_ID", "").Set("TENCENTCLOUD_SECRET_KEY", "");
    absl::StatusOr<Credentials> got = EnvCredentialProvider(env.Getenv()).GetCredentials();
    EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(got.status().message()),
                AllOf(HasSubstr("TENCENTCLOUD_SECRET_ID is set but empty"),
                      HasSubstr("TENCENTCLOUD_SECRET_KEY is set but empty")));
  }
}

TEST(EnvCredentialProviderTest, ReadsTheEnvironmentOnEveryCall) {
  auto vars = std::make_shared<std::map<std::string, std::string>>();
  EnvCredentialProvider provider([vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars->find(name);
    if (it == vars->end()) return std::nullopt;
    return it->second;
  });
  EXPECT_TRUE(absl::IsNotFound(provider.GetCredentials().status()));
  (*vars)["TENCENTCLOUD_SECRET_ID"] = "AKID-1";
  (*vars)["TENCENTCLOUD_SECRET_KEY"] = "key-1";
  ASSERT_TRUE(provider.GetCredentials().ok());
  EXPECT_EQ(provider.GetCredentials()->secret_key, "key-1");
  (*vars)["TENCENTCLOUD_SECRET_KEY"] = "key-2";
  EXPECT_EQ(provider.GetCredentials()->secret_key, "key-2");
}

TEST(EnvCredentialProviderTest, DefaultConstructorUsesProcessEnvironment) {
  ::setenv("TENCENTCLOUD_SECRET_ID", "AKID-from-process", 1);
  ::setenv("TENCENTCLOUD_SECRET_KEY", kSecretKey, 1);
  ::unsetenv("TENCENTCLOUD_SESSION_TOKEN");
  ::unsetenv("TENCENTCLOUD_TOKEN");
  ::setenv("TENCENTCLOUD_SECURITY_TOKEN", kToken, 1);
  absl::StatusOr<Credentials> got = EnvCredentialProvider().GetCredentials();
  ::unsetenv("TENCENTCLOUD_SECRET_ID");
  ::unsetenv("TENCENTCLOUD_SECRET_KEY");
  ::unsetenv("TENCENTCLOUD_SECURITY_TOKEN");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->secret_id, "AKID-from-process");
  EXPECT_EQ(got->token, kToken);
}

// ---------------------------------------------------------------- Profile

TEST(ProfileCredentialProviderTest, ParsesDefaultSection) {
  TempDir dir;
  const std::string path = dir.Write("credentials",
                                     "# a comment\n"
                                     "; another comment\n"
                                     "[other]\n"
                                     "secret_id = AKID-other\n"
                                     "secret_key = other-key\n"
                                     "\n"
                                     "[default]\n"
                                     "secret_id=" +
                                         std::string(kSecretId) +
                                         "\n"
                                         "   secret_key   =   " +
                                         kSecretKey +
                                         "   \r\n"
                                         "\ttoken\t=\t" +
                                         kToken +
                                         "\n"
                                         "# secret_key = commented-out\n"
                                         "unrelated = value\n"
                                         "[later]\n"
                                         "secret_key = later-key\n");
  ProfileCredentialProvider provider(path);
  EXPECT_EQ(provider.path(), path);
  EXPECT_EQ(provider.Name(), "profile file " + path);
  absl::StatusOr<Credentials> got = provider.GetCredentials();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->secret_id, kSecretId);
  EXPECT_EQ(got->secret_key, kSecretKey);
  EXPECT_EQ(got->token, kToken);
  EXPECT_EQ(got->expiry, absl::InfiniteFuture());
}

TEST(ProfileCredentialProviderTest, TokenIsOptionalAndSectionHeaderMayHaveSpaces) {
  TempDir dir;
  const std::string path =
      dir.Write("credentials", "\xEF\xBB\xBF[ default ]\nsecret_id = AKID-x\nsecret_key = key-x\n");
  absl::StatusOr<Credentials> got = ProfileCredentialProvider(path).GetCredentials();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->secret_id, "AKID-x");
  EXPECT_EQ(got->secret_key, "key-x");
  EXPECT_EQ(got->token, "");
}

TEST(ProfileCredentialProviderTest, MissingFileIsNotFoundNamingThePath) {
  TempDir dir;
  const std::string path = dir.path() + "/does-not-exist";
  absl::StatusOr<Credentials> got = ProfileCredentialProvider(path).GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr(path));
  // A missing parent directory is just as missing.
  got = ProfileCredentialProvider(path + "/credentials").GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
}

TEST(ProfileCredentialProviderTest, MissingKeysNamePathAndKey) {
  TempDir dir;
  const std::string no_key = dir.Write(
      "no_key", absl::StrCat("[default]\nsecret_id = ", kSecretId, "\ntoken = ", kToken, "\n"));
  absl::StatusOr<Credentials> got = ProfileCredentialProvider(no_key).GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()),
              AllOf(HasSubstr(no_key), HasSubstr("secret_key")));
  ExpectNoSecrets(got.status());

  const std::string no_id =
      dir.Write("no_id", absl::StrCat("[default]\nsecret_key = ", kSecretKey, "\n"));
  got = ProfileCredentialProvider(no_id).GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()), AllOf(HasSubstr(no_id), HasSubstr("secret_id")));
  ExpectNoSecrets(got.status());

  const std::string empty_key = dir.Write(
      "empty_key", absl::StrCat("[default]\nsecret_id = ", kSecretId, "\nsecret_key =   \n"));
  got = ProfileCredentialProvider(empty_key).GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()),
              AllOf(HasSubstr(empty_key), HasSubstr("secret_key")));
}

TEST(ProfileCredentialProviderTest, KeysOutsideDefaultDoNotCount) {
  TempDir dir;
  const std::string path = dir.Write(
      "credentials", absl::StrCat("[prod]\nsecret_id = AKID-prod\nsecret_key = ", kSecretKey,
                                  "\n[default]\n# nothing here\n"));
  absl::StatusOr<Credentials> got = ProfileCredentialProvider(path).GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()),
              AllOf(HasSubstr(path), HasSubstr("secret_id"), HasSubstr("secret_key")));
  ExpectNoSecrets(got.status());

  const std::string no_section =
      dir.Write("no_section", absl::StrCat("secret_id = AKID\nsecret_key = ", kSecretKey, "\n"));
  got = ProfileCredentialProvider(no_section).GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()),
              AllOf(HasSubstr(no_section), HasSubstr("[default]"), HasSubstr("secret_key")));
  ExpectNoSecrets(got.status());
}

TEST(ProfileCredentialProviderTest, UnreadableFileIsFailedPrecondition) {
  TempDir dir;
  const std::string path = dir.Write(
      "credentials", absl::StrCat("[default]\nsecret_id = AKID\nsecret_key = ", kSecretKey, "\n"));
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  if (::access(path.c_str(), R_OK) == 0) {
    GTEST_SKIP() << "running as a user that ignores file permissions (root)";
  }
  absl::StatusOr<Credentials> got = ProfileCredentialProvider(path).GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr(path));
  ExpectNoSecrets(got.status());
}

TEST(ProfileCredentialProviderTest, OpenFailureOtherThanMissingIsFailedPrecondition) {
  // A symlink loop fails to open with ELOOP even for root, unlike chmod 0.
  TempDir dir;
  const std::string a = dir.path() + "/loop_a";
  const std::string b = dir.path() + "/loop_b";
  ASSERT_EQ(::symlink(b.c_str(), a.c_str()), 0);
  ASSERT_EQ(::symlink(a.c_str(), b.c_str()), 0);
  absl::StatusOr<Credentials> got = ProfileCredentialProvider(a).GetCredentials();
  ::unlink(a.c_str());
  ::unlink(b.c_str());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()), AllOf(HasSubstr(a), HasSubstr("cannot read")));
}

TEST(ProfileCredentialProviderTest, FifoIsRejectedWithoutBlocking) {
  TempDir dir;
  const std::string path = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  absl::StatusOr<Credentials> got = ProfileCredentialProvider(path).GetCredentials();
  ::unlink(path.c_str());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("not a regular file"));
}

TEST(ProfileCredentialProviderTest, DirectoryIsFailedPrecondition) {
  TempDir dir;
  const std::string path = dir.Mkdir("credentials");
  absl::StatusOr<Credentials> got = ProfileCredentialProvider(path).GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr(path));
}

TEST(ProfileCredentialProviderTest, PathResolution) {
  FakeEnv both;
  both.Set("TENCENTCLOUD_CREDENTIALS_FILE", "/etc/bps/credentials").Set("HOME", "/home/bps");
  EXPECT_EQ(ProfileCredentialProvider("/explicit", both.Getenv()).path(), "/explicit");
  EXPECT_EQ(ProfileCredentialProvider("", both.Getenv()).path(), "/etc/bps/credentials");

  FakeEnv home_only;
  home_only.Set("HOME", "/home/bps/");
  EXPECT_EQ(ProfileCredentialProvider("", home_only.Getenv()).path(),
            "/home/bps/.tencentcloud/credentials");

  FakeEnv empty_file_var;
  empty_file_var.Set("TENCENTCLOUD_CREDENTIALS_FILE", "").Set("HOME", "/root");
  EXPECT_EQ(ProfileCredentialProvider("", empty_file_var.Getenv()).path(),
            "/root/.tencentcloud/credentials");

  FakeEnv nothing;
  ProfileCredentialProvider no_path("", nothing.Getenv());
  EXPECT_EQ(no_path.path(), "");
  EXPECT_EQ(no_path.GetCredentials().status().code(), absl::StatusCode::kNotFound);
}

TEST(ProfileCredentialProviderTest, ReadsTheFileNamedByTheEnvironment) {
  TempDir dir;
  const std::string path =
      dir.Write("creds.ini", "[default]\nsecret_id = AKID-env\nsecret_key = key-env\n");
  FakeEnv env;
  env.Set("TENCENTCLOUD_CREDENTIALS_FILE", path).Set("HOME", "/nonexistent-home");
  absl::StatusOr<Credentials> got = ProfileCredentialProvider("", env.Getenv()).GetCredentials();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->secret_id, "AKID-env");
}

// ---------------------------------------------------------------- Chain

class ScriptedProvider final : public CredentialProvider {
 public:
  ScriptedProvider(std::string name, absl::StatusOr<Credentials> result)
      : name_(std::move(name)), result_(std::move(result)) {}
  absl::StatusOr<Credentials> GetCredentials() override {
    ++calls;
    return result_;
  }
  std::string Name() const override { return name_; }
  int calls = 0;

 private:
  std::string name_;
  absl::StatusOr<Credentials> result_;
};

Credentials Creds(const std::string& id) {
  Credentials c;
  c.secret_id = id;
  c.secret_key = kSecretKey;
  return c;
}

TEST(CredentialProviderChainTest, FirstSuccessWins) {
  auto a = std::make_shared<ScriptedProvider>("a", absl::NotFoundError("nothing"));
  auto b = std::make_shared<ScriptedProvider>("b", Creds("AKID-b"));
  auto c = std::make_shared<ScriptedProvider>("c", Creds("AKID-c"));
  CredentialProviderChain chain({a, b, c});
  EXPECT_EQ(chain.Name(), "chain");
  absl::StatusOr<Credentials> got = chain.GetCredentials();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->secret_id, "AKID-b");
  EXPECT_EQ(a->calls, 1);
  EXPECT_EQ(b->calls, 1);
  EXPECT_EQ(c->calls, 0);
}

TEST(CredentialProviderChainTest, OtherErrorStopsTheChain) {
  auto a = std::make_shared<ScriptedProvider>(
      "a", absl::FailedPreconditionError("TENCENTCLOUD_SECRET_KEY is set but empty"));
  auto b = std::make_shared<ScriptedProvider>("b", Creds("AKID-b"));
  CredentialProviderChain chain({a, b});
  absl::StatusOr<Credentials> got = chain.GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(got.status().message(), "a: TENCENTCLOUD_SECRET_KEY is set but empty");
  EXPECT_EQ(b->calls, 0);
}

TEST(CredentialProviderChainTest, AllNotFoundListsWhatWasTried) {
  TempDir dir;
  const std::string missing = dir.path() + "/credentials";
  FakeEnv env;
  auto chain =
      CredentialProviderChain({std::make_shared<EnvCredentialProvider>(env.Getenv()),
                               std::make_shared<ProfileCredentialProvider>(missing, env.Getenv())});
  absl::StatusOr<Credentials> got = chain.GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(got.status().message(),
            absl::StrCat("no Tencent Cloud credentials found; tried: environment "
                         "(TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY not set); "
                         "profile file ",
                         missing, " (no such file)"));
}

TEST(CredentialProviderChainTest, EnvThenProfile) {
  TempDir dir;
  const std::string path =
      dir.Write("credentials", "[default]\nsecret_id = AKID-file\nsecret_key = key-file\n");
  FakeEnv empty;
  CredentialProviderChain from_file({std::make_shared<EnvCredentialProvider>(empty.Getenv()),
                                     std::make_shared<ProfileCredentialProvider>(path)});
  ASSERT_TRUE(from_file.GetCredentials().ok());
  EXPECT_EQ(from_file.GetCredentials()->secret_id, "AKID-file");

  FakeEnv env;
  env.Set("TENCENTCLOUD_SECRET_ID", "AKID-env").Set("TENCENTCLOUD_SECRET_KEY", "key-env");
  CredentialProviderChain from_env({std::make_shared<EnvCredentialProvider>(env.Getenv()),
                                    std::make_shared<ProfileCredentialProvider>(path)});
  ASSERT_TRUE(from_env.GetCredentials().ok());
  EXPECT_EQ(from_env.GetCredentials()->secret_id, "AKID-env");

  // A half-configured environment stops the chain instead of silently using the file.
  FakeEnv half;
  half.Set("TENCENTCLOUD_SECRET_ID", "AKID-env");
  CredentialProviderChain broken({std::make_shared<EnvCredentialProvider>(half.Getenv()),
                                  std::make_shared<ProfileCredentialProvider>(path)});
  absl::StatusOr<Credentials> got = broken.GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()),
              AllOf(HasSubstr("environment"), HasSubstr("TENCENTCLOUD_SECRET_KEY")));
}

TEST(CredentialProviderChainTest, BrokenProfileErrorNamesFileAndKeyWithoutSecrets) {
  TempDir dir;
  const std::string path =
      dir.Write("credentials",
                absl::StrCat("[default]\nsecret_key = ", kSecretKey, "\ntoken = ", kToken, "\n"));
  FakeEnv empty;
  CredentialProviderChain chain({std::make_shared<EnvCredentialProvider>(empty.Getenv()),
                                 std::make_shared<ProfileCredentialProvider>(path)});
  absl::StatusOr<Credentials> got = chain.GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got.status().message()), AllOf(HasSubstr(path), HasSubstr("secret_id")));
  // The provider's message already names it: not repeated.
  EXPECT_EQ(std::string(got.status().message()).find("profile file"),
            std::string(got.status().message()).rfind("profile file"));
  ExpectNoSecrets(got.status());
}

TEST(CredentialProviderChainTest, EmptyChainAndNullProviders) {
  absl::StatusOr<Credentials> got = CredentialProviderChain({}).GetCredentials();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  auto b = std::make_shared<ScriptedProvider>("b", Creds("AKID-b"));
  got = CredentialProviderChain({nullptr, b}).GetCredentials();
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->secret_id, "AKID-b");
}

TEST(MakeDefaultCredentialChainTest, UsesEnvironmentThenProfile) {
  TempDir dir;
  const std::string path =
      dir.Write("credentials", "[default]\nsecret_id = AKID-default\nsecret_key = key-default\n");
  for (const char* name :
       {"TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_SESSION_TOKEN",
        "TENCENTCLOUD_TOKEN", "TENCENTCLOUD_SECURITY_TOKEN"}) {
    ::unsetenv(name);
  }
  ::setenv("TENCENTCLOUD_CREDENTIALS_FILE", path.c_str(), 1);
  std::shared_ptr<CredentialProvider> chain = MakeDefaultCredentialChain();
  ASSERT_NE(chain, nullptr);
  absl::StatusOr<Credentials> got = chain->GetCredentials();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->secret_id, "AKID-default");

  ::setenv("TENCENTCLOUD_SECRET_ID", "AKID-env", 1);
  ::setenv("TENCENTCLOUD_SECRET_KEY", "key-env", 1);
  got = chain->GetCredentials();
  ::unsetenv("TENCENTCLOUD_SECRET_ID");
  ::unsetenv("TENCENTCLOUD_SECRET_KEY");
  ::unsetenv("TENCENTCLOUD_CREDENTIALS_FILE");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->secret_id, "AKID-env");
}

// ------------------------------------------------------------ named profiles

// The environment of a machine whose HOME is `home`, with nothing else set.
FakeEnv HomeEnv(const std::string& home) {
  FakeEnv env;
  env.Set("HOME", home);
  return env;
}

TEST(NamedProfileTest, IniSectionOfTheSdkCredentialsFile) {
  TempDir home;
  home.Mkdir(".tencentcloud");
  home.Write(".tencentcloud/credentials",
             "[default]\nsecret_id = AKID-default\nsecret_key = key-default\n"
             "[prod]\nsecret_id = AKID-prod\nsecret_key = key-prod\ntoken = tok-prod\n");
  auto provider = MakeNamedProfileProvider("prod", HomeEnv(home.path()).Getenv());
  ASSERT_TRUE(provider.ok()) << provider.status();
  absl::StatusOr<Credentials> got = (*provider)->GetCredentials();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->secret_id, "AKID-prod");
  EXPECT_EQ(got->secret_key, "key-prod");
  EXPECT_EQ(got->token, "tok-prod");
  EXPECT_EQ((*provider)->Source(),
            absl::StrCat("profile prod from ", home.path(), "/.tencentcloud/credentials"));
}

TEST(NamedProfileTest, TccliJsonFileWhenTheIniFileHasNoSuchSection) {
  TempDir home;
  home.Mkdir(".tencentcloud");
  home.Write(".tencentcloud/credentials", "[default]\nsecret_id = AKID-d\nsecret_key = k-d\n");
  home.Mkdir(".tccli");
  const std::string file =
      home.Write(".tccli/staging.credential",
                 R"({"secretId": "AKID-staging", "secretKey": "key-staging", "token": ""})");
  auto provider = MakeNamedProfileProvider("staging", HomeEnv(home.path()).Getenv());
  ASSERT_TRUE(provider.ok()) << provider.status();
  absl::StatusOr<Credentials> got = (*provider)->GetCredentials();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->secret_id, "AKID-staging");
  EXPECT_EQ(got->secret_key, "key-staging");
  EXPECT_EQ(got->token, "");
  EXPECT_EQ((*provider)->Source(), absl::StrCat("profile staging from ", file));
}

TEST(NamedProfileTest, SharedCredentialsDirAndCredentialsFileVariablesAreHonoured) {
  TempDir dir;
  dir.Mkdir("tccli");
  dir.Write("tccli/ci.credential", R"({"secretId":"AKID-ci","secretKey":"key-ci"})");
  FakeEnv env;
  env.Set("TENCENTCLOUD_SHARED_CREDENTIALS_DIR", dir.path() + "/tccli/")
      .Set("TENCENTCLOUD_CREDENTIALS_FILE", dir.path() + "/absent.ini");
  auto provider = MakeNamedProfileProvider("ci", env.Getenv());
  ASSERT_TRUE(provider.ok()) << provider.status();
  EXPECT_EQ((*provider)->GetCredentials()->secret_id, "AKID-ci");
}

TEST(NamedProfileTest, MissingProfileNamesTheProfileAndBothFiles) {
  TempDir home;
  home.Mkdir(".tencentcloud");
  home.Write(".tencentcloud/credentials", "[default]\nsecret_id = AKID-d\nsecret_key = k-d\n");
  auto provider = MakeNamedProfileProvider("nosuch", HomeEnv(home.path()).Getenv());
  ASSERT_FALSE(provider.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(provider.status())) << provider.status();
  const std::string message(provider.status().message());
  EXPECT_THAT(message, HasSubstr("\"nosuch\""));
  EXPECT_THAT(message, HasSubstr(absl::StrCat("no section [nosuch] in ", home.path(),
                                              "/.tencentcloud/credentials")));
  EXPECT_THAT(message,
              HasSubstr(absl::StrCat("no file ", home.path(), "/.tccli/nosuch.credential")));
}

TEST(NamedProfileTest, NoFilesAtAllIsStillAnError) {
  TempDir home;
  auto provider = MakeNamedProfileProvider("default", HomeEnv(home.path()).Getenv());
  ASSERT_FALSE(provider.ok());
  EXPECT_THAT(std::string(provider.status().message()),
              AllOf(HasSubstr("\"default\""), HasSubstr("no file")));
}

TEST(NamedProfileTest, ProfileWithoutKeysIsRefusedAtStartWithoutSecrets) {
  TempDir home;
  home.Mkdir(".tccli");
  home.Write(".tccli/half.credential", absl::StrCat(R"({"secretKey":")", kSecretKey, R"("})"));
  home.Mkdir(".tencentcloud");
  home.Write(".tencentcloud/credentials",
             absl::StrCat("[broken]\nsecret_key = ", kSecretKey, "\n"));
  CloudChainOptions options;
  options.getenv = HomeEnv(home.path()).Getenv();
  for (const char* profile : {"half", "broken"}) {
    options.profile = profile;
    auto made = MakeServiceCredentials(options);
    ASSERT_FALSE(made.ok()) << profile;
    EXPECT_TRUE(absl::IsFailedPrecondition(made.status())) << made.status();
    EXPECT_THAT(std::string(made.status().message()),
                AllOf(HasSubstr(absl::StrCat("\"", profile, "\"")), HasSubstr(home.path())));
    ExpectNoSecrets(made.status());
  }
}

TEST(NamedProfileTest, ANamedProfileIsUsedEvenWhenTheEnvironmentHasAKey) {
  TempDir home;
  home.Mkdir(".tccli");
  home.Write(".tccli/prod.credential", R"({"secretId":"AKID-prod","secretKey":"key-prod"})");
  CloudChainOptions options;
  options.getenv = HomeEnv(home.path())
                       .Set("TENCENTCLOUD_SECRET_ID", "AKID-env")
                       .Set("TENCENTCLOUD_SECRET_KEY", "key-env")
                       .Getenv();
  options.profile = "prod";
  auto made = MakeServiceCredentials(options);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ((*made)->GetCredentials()->secret_id, "AKID-prod");
}

TEST(NamedProfileTest, ProfileNamesThatAreNotFileNamesAreRefused) {
  for (const char* bad : {"", "../etc/passwd", "a/b", ".hidden", "sp ace"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(CheckProfileName(bad))) << bad;
  }
  EXPECT_TRUE(CheckProfileName(std::string(65, 'p')).code() == absl::StatusCode::kInvalidArgument);
  for (const char* good : {"default", "prod-eu_1", "team.ops"}) {
    EXPECT_TRUE(CheckProfileName(good).ok()) << good;
  }
}

// ------------------------------------------------------- credential source log

// Everything the log writes while it lives.
class CapturedLog {
 public:
  CapturedLog() : file_(std::tmpfile()) { log::SetOutput(file_); }
  ~CapturedLog() {
    log::SetOutput(stdout);
    std::fclose(file_);
  }
  std::string Text() {
    std::fflush(file_);
    std::rewind(file_);
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), file_)) > 0) text.append(buf, n);
    return text;
  }

 private:
  std::FILE* file_;
};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(SourceLoggingTest, LogsTheSourceOnceAndAgainOnChangeNeverTheKey) {
  TempDir home;
  home.Mkdir(".tencentcloud");
  const std::string ini =
      home.Write(".tencentcloud/credentials",
                 absl::StrCat("[default]\nsecret_id = ", kSecretId, "\nsecret_key = ", kSecretKey,
                              "\ntoken = ", kToken, "\n"));
  std::map<std::string, std::string> vars = {{"HOME", home.path()}};
  auto getenv = [&vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  CloudChainOptions options;
  options.getenv = getenv;
  auto made = MakeServiceCredentials(options);
  ASSERT_TRUE(made.ok()) << made.status();
  CapturedLog log;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE((*made)->GetCredentials().ok());
  vars["TENCENTCLOUD_SECRET_ID"] = "AKIDenvironmentkey0000000000001234";
  vars["TENCENTCLOUD_SECRET_KEY"] = kSecretKey;
  ASSERT_TRUE((*made)->GetCredentials().ok());
  ASSERT_TRUE((*made)->GetCredentials().ok());
  const std::string text = log.Text();
  EXPECT_EQ(Count(text, "\"msg\":\"Tencent Cloud credential source\""), 1u) << text;
  EXPECT_THAT(text, HasSubstr(absl::StrCat("\"source\":\"profile default from ", ini, "\"")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("\"secret_id\":\"", MaskSecretId(kSecretId), "\"")));
  EXPECT_EQ(Count(text, "\"msg\":\"Tencent Cloud credential source changed\""), 1u) << text;
  EXPECT_THAT(text, HasSubstr("\"source\":\"environment\""));
  EXPECT_THAT(text, AllOf(Not(HasSubstr(kSecretKey)), Not(HasSubstr(kToken)),
                          Not(HasSubstr(kSecretId)), Not(HasSubstr("AKIDenvironmentkey"))));
}

}  // namespace
}  // namespace blueprintsync::tencent
