// PostgresDatabaseTest: a test fixture with a fresh database on the shared
// throwaway PostgreSQL server (postgres_server.h) for every test, and a raw
// SQL helper to inspect or tamper with it. The job and policy store suites
// derive from it.
#ifndef BLUEPRINTSYNC_TESTS_TESTING_UTIL_POSTGRES_DATABASE_TEST_H_
#define BLUEPRINTSYNC_TESTS_TESTING_UTIL_POSTGRES_DATABASE_TEST_H_

#include <string>

#include "gtest/gtest.h"
#include "tests/testing_util/postgres_server.h"

namespace blueprintsync::testing {

class PostgresDatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = PostgresServer::Shared();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    auto dsn = server_->CreateDatabase();
    ASSERT_TRUE(dsn.ok()) << dsn.status();
    dsn_ = *dsn;
    db_ = dsn_.substr(dsn_.rfind('/') + 1);
  }

  // The rows of `sql`'s answer as the server prints them ("" on failure,
  // which fails the test).
  std::string Sql(const std::string& sql) {
    auto out = server_->Query(db_, sql);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *out : "";
  }

  PostgresServer* server_ = nullptr;
  std::string dsn_;  // the test's database
  std::string db_;   // its name
};

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_TESTS_TESTING_UTIL_POSTGRES_DATABASE_TEST_H_
