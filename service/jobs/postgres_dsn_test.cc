// DSN redaction and the errors of a PostgreSQL store that cannot be reached:
// the password never shows. No server needed.
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/jobs/job_store.h"
#include "service/jobs/postgres_connection.h"
#include "service/jobs/postgres_lease.h"

namespace blueprintsync::jobs {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(RedactDsnTest, Uris) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"postgresql://user:s3cret@db.example:5432/jobs",
       "postgresql://user:****@db.example:5432/jobs"},
      {"postgres://user:s3cret@db.example/jobs", "postgres://user:****@db.example/jobs"},
      {"postgresql://user@db.example/jobs", "postgresql://user@db.example/jobs"},
      {"postgresql://db.example:5432/jobs", "postgresql://db.example:5432/jobs"},
      {"postgresql://", "postgresql://"},
      {"postgresql://u:p%40ss@h/db", "postgresql://u:****@h/db"},
      // Unencoded '@' and '/' in a password: libpq cannot parse it, but it is
      // still hidden.
      {"postgresql://u:p@ss/w@h/db", "postgresql://u:****@h/db"},
      {"postgresql://u:@h/db", "postgresql://u:****@h/db"},
      {"postgresql://u:pw@h1:5432,h2:5433/db?target_session_attrs=read-write",
       "postgresql://u:****@h1:5432,h2:5433/db?target_session_attrs=read-write"},
      {"postgresql://u:pw@h/db?sslmode=require&password=other&application_name=x",
       "postgresql://u:****@h/db?sslmode=require&password=****&application_name=x"},
      {"postgresql://h/db?password=qq", "postgresql://h/db?password=****"},
      {"postgresql://h/db?pass%77ord=qq", "postgresql://h/db?pass%77ord=****"},
      {"postgresql://h/db?passfile=/etc/pgpass", "postgresql://h/db?passfile=/etc/pgpass"},
  };
  for (const auto& [dsn, want] : cases) EXPECT_EQ(RedactDsn(dsn), want) << dsn;
}

TEST(RedactDsnTest, KeywordValueStrings) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"host=h user=u password=s3cret dbname=db", "host=h user=u password=**** dbname=db"},
      {"password=s3cret", "password=****"},
      {"host=h password = 'a b\\' c' dbname=db", "host=h password = **** dbname=db"},
      {"host=h password=''", "host=h password=****"},
      {"host=h dbname=db", "host=h dbname=db"},
      {"", ""},
      // Does not tokenize: everything from the password on is hidden.
      {"host=h password='unterminated and more", "host=h password=****"},
      {"oops password=x", "oops ****"},
  };
  for (const auto& [dsn, want] : cases) EXPECT_EQ(RedactDsn(dsn), want) << dsn;
}

TEST(RedactDsnTest, StoreSpecOnlyRedactsPostgres) {
  EXPECT_EQ(RedactStoreSpec("postgres://u:pw@h/db"), "postgres://u:****@h/db");
  EXPECT_EQ(RedactStoreSpec("postgresql://u:pw@h/db"), "postgresql://u:****@h/db");
  EXPECT_EQ(RedactStoreSpec("sqlite:/var/lib/password=x.db"), "sqlite:/var/lib/password=x.db");
  EXPECT_EQ(RedactStoreSpec("memory:"), "memory:");
}

TEST(SecretsTest, ScrubHidesEverySpellingOfThePassword) {
  pg::Secrets secrets("postgresql://u:s3cr%65t@h/db?password=other-pw");
  EXPECT_EQ(secrets.display(), "postgresql://u:****@h/db?password=****");
  const std::string scrubbed = secrets.Scrub(
      "a s3cret b s3cr%65t c other-pw d postgresql://u:s3cr%65t@h/db?password=other-pw");
  EXPECT_THAT(scrubbed, Not(HasSubstr("s3cr")));
  EXPECT_THAT(scrubbed, Not(HasSubstr("other-pw")));
  EXPECT_THAT(scrubbed, HasSubstr("postgresql://u:****@h/db"));

  pg::Secrets keyword("host=h password='a \\'quoted\\' pw'");
  EXPECT_EQ(keyword.display(), "host=h password=****");
  EXPECT_THAT(keyword.Scrub("libpq said: a 'quoted' pw"), Not(HasSubstr("quoted")));
}

// A loopback port with nothing accepting: bound, not listening.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~ClosedPort() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

constexpr char kPassword[] = "Tiger-Secret-4711";

TEST(PostgresErrorsTest, UnreachableServerIsUnavailableWithoutThePassword) {
  ClosedPort closed;
  const std::string dsn =
      absl::StrCat("postgresql://jobs:", kPassword, "@127.0.0.1:", closed.port(), "/jobs");
  for (const std::string& spec : {dsn, "postgres" + dsn.substr(10)}) {
    auto store = OpenJobStore(spec);
    ASSERT_FALSE(store.ok()) << spec;
    EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
    EXPECT_THAT(store.status().message(), Not(HasSubstr(kPassword)));
    EXPECT_THAT(store.status().message(), HasSubstr("jobs:****@127.0.0.1"));
    EXPECT_THAT(store.status().message(), HasSubstr("cannot connect"));
  }
  auto lease = PostgresLeaderLease::Open(dsn);
  ASSERT_FALSE(lease.ok());
  EXPECT_EQ(lease.status().code(), absl::StatusCode::kUnavailable) << lease.status();
  EXPECT_THAT(lease.status().message(), Not(HasSubstr(kPassword)));
}

TEST(PostgresErrorsTest, KeywordDsnErrorsHideThePassword) {
  ClosedPort closed;
  auto store = OpenPostgresJobStore(
      absl::StrCat("host=127.0.0.1 port=", closed.port(), " user=jobs password=", kPassword));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  EXPECT_THAT(store.status().message(), Not(HasSubstr(kPassword)));
  EXPECT_THAT(store.status().message(), HasSubstr("password=****"));
}

// libpq quotes the whole URI in some parse errors.
TEST(PostgresErrorsTest, UnparsableDsnIsInvalidArgumentWithoutThePassword) {
  for (const std::string& dsn : {absl::StrCat("postgresql://u:", kPassword, "@[::1/db"),
                                 absl::StrCat("postgresql://u:", kPassword, "@h/db?nosuchoption=1"),
                                 absl::StrCat("host=h password=", kPassword, " nosuchoption=1")}) {
    auto store = OpenPostgresJobStore(dsn);
    ASSERT_FALSE(store.ok()) << RedactDsn(dsn);
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << store.status();
    EXPECT_THAT(store.status().message(), Not(HasSubstr(kPassword)));
    EXPECT_THAT(store.status().message(), HasSubstr("invalid connection string"));
  }
}

TEST(PostgresErrorsTest, PgPasswordFromTheEnvironmentIsNeverShown) {
  ClosedPort closed;
  setenv("PGPASSWORD", kPassword, 1);
  // The environment's password is scrubbed even where libpq might echo it.
  pg::Secrets secrets(absl::StrCat("postgresql://u@127.0.0.1:", closed.port(), "/db"));
  EXPECT_THAT(secrets.Scrub(absl::StrCat("x ", kPassword, " y")), Not(HasSubstr(kPassword)));
  auto store =
      OpenPostgresJobStore(absl::StrCat("postgresql://u@127.0.0.1:", closed.port(), "/db"));
  unsetenv("PGPASSWORD");
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), Not(HasSubstr(kPassword)));
}

}  // namespace
}  // namespace blueprintsync::jobs
