// "Did you mean": the known word closest to a mistyped command, subcommand or
// flag, by edit distance, so a usage error can name the likely intent.
#ifndef BLUEPRINTSYNC_CLIENT_SUGGEST_H_
#define BLUEPRINTSYNC_CLIENT_SUGGEST_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace blueprintsync::cli {

// Levenshtein distance (insert, delete, substitute; an adjacent swap counts
// as one edit, as typing errors go).
size_t EditDistance(absl::string_view a, absl::string_view b);

// The candidate closest to `word` if it is close enough to be a typo (at most
// 2 edits, fewer than half of the word), else "". Ties go to the first.
std::string ClosestMatch(absl::string_view word, const std::vector<std::string>& candidates);

// "; did you mean \"X\"?" or "" (for appending to an error message).
std::string DidYouMean(absl::string_view word, const std::vector<std::string>& candidates,
                       absl::string_view prefix = "");

}  // namespace blueprintsync::cli

#endif  // BLUEPRINTSYNC_CLIENT_SUGGEST_H_
