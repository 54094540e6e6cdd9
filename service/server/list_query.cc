#include "service/server/list_query.h"

#include <cctype>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "blueprintsync/internal/job_record.pb.h"
#include "service/common/display.h"
#include "service/jobs/job_state.h"
#include "service/tencent/crypto.h"

namespace blueprintsync::server {
namespace {

absl::Status BadFilter(absl::string_view what) {
  return jobs::InvalidField("filter", "INVALID_FILTER",
                            absl::StrCat(what,
                                         "; expected conditions like state = RUNNING AND "
                                         "blueprint_id = \"lhbp-ls883feh\" on the fields "
                                         "state, blueprint_id, source_region"));
}

// Splits the filter into tokens: words, "=", and quoted strings.
absl::StatusOr<std::vector<std::string>> Tokenize(absl::string_view f) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < f.size()) {
    const char c = f[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '=') {
      out.emplace_back("=");
      ++i;
    } else if (c == '"') {
      const size_t end = f.find('"', i + 1);
      if (end == absl::string_view::npos) return BadFilter("unterminated quoted value");
      out.push_back(absl::StrCat("\"", f.substr(i + 1, end - i - 1)));  // marked as quoted
      i = end + 1;
    } else {
      size_t j = i;
      while (j < f.size() && !std::isspace(static_cast<unsigned char>(f[j])) && f[j] != '=' &&
             f[j] != '"') {
        ++j;
      }
      out.emplace_back(f.substr(i, j - i));
      i = j;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<jobs::JobQuery> ParseListRequest(const v1::ListSyncJobsRequest& request) {
  jobs::JobQuery q;
  if (request.page_size() < 0) {
    return jobs::InvalidField(
        "page_size", "NEGATIVE_PAGE_SIZE",
        absl::StrCat("page_size must not be negative, got ", request.page_size()));
  }
  q.page_size =
      request.page_size() == 0 ? kDefaultPageSize : std::min(request.page_size(), kMaxPageSize);
  const std::string& filter = request.filter();
  if (filter.size() > kMaxFilterBytes) {
    return jobs::InvalidField("filter", "FILTER_TOO_LONG",
                              absl::StrCat("filter is longer than ", kMaxFilterBytes, " bytes"));
  }
  auto tokens = Tokenize(filter);
  if (!tokens.ok()) return tokens.status();
  const std::vector<std::string>& t = *tokens;
  for (size_t i = 0; i < t.size();) {
    if (i + 3 > t.size()) return BadFilter("incomplete condition: expected field = value");
    const std::string& field = t[i];
    if (t[i + 1] != "=") return BadFilter(absl::StrCat("expected \"=\" after ", Shown(field)));
    if (t[i + 2] == "=")
      return BadFilter(absl::StrCat("expected a value after ", Shown(field), " ="));
    std::string value = t[i + 2];
    if (!value.empty() && value[0] == '"') value.erase(0, 1);
    if (field == "state") {
      v1::SyncJob::State s;
      if (!v1::SyncJob::State_Parse(absl::AsciiStrToUpper(value), &s) ||
          s == v1::SyncJob::STATE_UNSPECIFIED) {
        return BadFilter(absl::StrCat("unknown state \"", Shown(value),
                                      "\" (QUEUED, RUNNING, SUCCEEDED or FAILED)"));
      }
      q.state = s;
    } else if (field == "blueprint_id") {
      q.blueprint_id = value;
    } else if (field == "source_region") {
      q.source_region = value;
    } else {
      return BadFilter(absl::StrCat("unknown field \"", Shown(field), "\""));
    }
    i += 3;
    if (i < t.size()) {
      if (absl::AsciiStrToUpper(t[i]) != "AND") {
        return BadFilter(absl::StrCat("expected AND, got \"", Shown(t[i]), "\""));
      }
      ++i;
      if (i >= t.size()) return BadFilter("AND must be followed by a condition");
    }
  }
  if (!request.page_token().empty()) {
    std::string raw;
    internal::PageToken token;
    if (request.page_token().size() > 1024 ||
        !absl::WebSafeBase64Unescape(request.page_token(), &raw) || !token.ParseFromString(raw) ||
        token.before_sequence() <= 0) {
      return jobs::InvalidField("page_token", "INVALID_PAGE_TOKEN",
                                "page_token is not one this service issued");
    }
    if (token.filter_sha256() != tencent::crypto::Sha256Hex(filter)) {
      return jobs::InvalidField("page_token", "PAGE_TOKEN_FILTER_MISMATCH",
                                "page_token was issued for a different filter");
    }
    q.cursor = token.before_sequence();
  }
  return q;
}

std::string MakePageToken(int64_t before_sequence, const std::string& filter) {
  internal::PageToken token;
  token.set_before_sequence(before_sequence);
  token.set_filter_sha256(tencent::crypto::Sha256Hex(filter));
  std::string out;
  absl::WebSafeBase64Escape(token.SerializeAsString(), &out);
  return out;
}

}  // namespace blueprintsync::server
