// Small helpers the store test suites share (jobs and policies): a
// protobuf equality matcher that says what differs, and a scratch
// directory removed when the test is done.
#ifndef BLUEPRINTSYNC_SERVICE_COMMON_TESTING_STORE_TEST_UTIL_H_
#define BLUEPRINTSYNC_SERVICE_COMMON_TESTING_STORE_TEST_UTIL_H_

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace blueprintsync::testing {

// Matches a message equal to `expected`; on a mismatch, lists the fields
// that differ.
MATCHER_P(EqualsProto, expected, "") {
  std::string diff;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  if (differencer.Compare(arg, expected)) return true;
  *result_listener << "differences: " << diff;
  return false;
}

// A fresh directory under the test temp dir ("<prefix>XXXXXX"), removed
// at destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix) {
    std::string templ = ::testing::TempDir() + prefix + "XXXXXX";
    char* made = mkdtemp(templ.data());
    EXPECT_NE(made, nullptr) << "mkdtemp " << templ;
    path_ = templ;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace blueprintsync::testing

#endif  // BLUEPRINTSYNC_SERVICE_COMMON_TESTING_STORE_TEST_UTIL_H_
