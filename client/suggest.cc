#include "client/suggest.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace blueprintsync::cli {

size_t EditDistance(absl::string_view a, absl::string_view b) {
  // Optimal string alignment: three rows of the dynamic-programming table.
  const size_t n = b.size();
  std::vector<size_t> before(n + 1), prev(n + 1), cur(n + 1);
  for (size_t j = 0; j <= n; ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= n; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        cur[j] = std::min(cur[j], before[j - 2] + 1);
      }
    }
    before.swap(prev);
    prev.swap(cur);
  }
  return prev[n];
}

std::string ClosestMatch(absl::string_view word, const std::vector<std::string>& candidates) {
  // Words are short; a longer one is not a typo of a command.
  if (word.empty() || word.size() > 64) return "";
  const size_t limit = std::min<size_t>(2, (word.size() - 1) / 2 + 1);
  std::string best;
  size_t best_distance = limit + 1;
  for (const std::string& c : candidates) {
    const size_t d = EditDistance(word, c);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best_distance <= limit ? best : "";
}

std::string DidYouMean(absl::string_view word, const std::vector<std::string>& candidates,
                       absl::string_view prefix) {
  const std::string match = ClosestMatch(word, candidates);
  if (match.empty()) return "";
  return absl::StrCat("; did you mean \"", prefix, match, "\"?");
}

}  // namespace blueprintsync::cli
