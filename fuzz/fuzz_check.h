// FUZZ_CHECK: the invariant assertion of the fuzz targets. A violated
// invariant aborts, which libFuzzer records as a crash with the input that
// caused it (saved as crash-<sha1> under -artifact_prefix). Unlike assert(),
// it stays on in every build type. FUZZ_CHECK_SHOW also prints a value that
// explains the failure (escaped, cut at 2000 bytes), e.g. the offending
// error message.
#ifndef BLUEPRINTSYNC_FUZZ_FUZZ_CHECK_H_
#define BLUEPRINTSYNC_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"

#define FUZZ_CHECK(cond, what)                                                          \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n  (%s)\n", __FILE__, __LINE__, \
                   (what), #cond);                                                      \
      std::abort();                                                                     \
    }                                                                                   \
  } while (false)

#define FUZZ_CHECK_SHOW(cond, what, shown)                                                \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      const std::string fuzz_shown_(shown);                                               \
      std::fprintf(stderr, "  value: \"%s\"\n",                                           \
                   absl::CHexEscape(fuzz_shown_.substr(0, 2000)).c_str());                \
      FUZZ_CHECK(cond, what);                                                             \
    }                                                                                     \
  } while (false)

#endif  // BLUEPRINTSYNC_FUZZ_FUZZ_CHECK_H_
