#include "service/jobs/postgres_dsn.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace blueprintsync::jobs {
namespace {

constexpr absl::string_view kMask = "****";

// Percent-decoding as libpq applies it to URI components (invalid escapes
// are kept as written: libpq rejects them, and hiding both spellings is the
// point here).
std::string PercentDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && absl::ascii_isxdigit(s[i + 1]) &&
        absl::ascii_isxdigit(s[i + 2])) {
      int v = 0;
      for (char c : s.substr(i + 1, 2)) {
        v = v * 16 + (absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10);
      }
      out.push_back(static_cast<char>(v));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool IsUri(absl::string_view dsn) {
  return absl::StartsWith(dsn, "postgresql://") || absl::StartsWith(dsn, "postgres://");
}

// The spans of a URI to mask: the userinfo's password and the values of
// `password=` query parameters. The userinfo ends at the LAST '@' after
// "://": libpq stops at the first '@' or '/', but a password that contains
// either is still a password the user meant to keep secret.
struct UriSecrets {
  std::vector<std::pair<size_t, size_t>> spans;  // [begin, end) to mask
};

UriSecrets FindUriSecrets(absl::string_view uri) {
  UriSecrets out;
  const size_t start = uri.find("://") + 3;
  const size_t at = uri.rfind('@');
  size_t query_from = start;
  if (at != absl::string_view::npos && at >= start) {
    const size_t colon = uri.find(':', start);
    if (colon != absl::string_view::npos && colon < at) out.spans.push_back({colon + 1, at});
    query_from = at + 1;
  }
  const size_t q = uri.find('?', query_from);
  if (q != absl::string_view::npos) {
    size_t pos = q + 1;
    while (pos <= uri.size()) {
      size_t amp = uri.find('&', pos);
      if (amp == absl::string_view::npos) amp = uri.size();
      absl::string_view param = uri.substr(pos, amp - pos);
      const size_t eq = param.find('=');
      if (eq != absl::string_view::npos && PercentDecode(param.substr(0, eq)) == "password") {
        out.spans.push_back({pos + eq + 1, amp});
      }
      pos = amp + 1;
    }
  }
  return out;
}

// keyword=value form. Values may be single-quoted with backslash escapes.
// Returns false when the text does not tokenize.
bool FindKeywordSecrets(absl::string_view dsn, std::vector<std::pair<size_t, size_t>>* spans) {
  size_t i = 0;
  const size_t n = dsn.size();
  while (true) {
    while (i < n && absl::ascii_isspace(dsn[i])) ++i;
    if (i == n) return true;
    const size_t key_begin = i;
    while (i < n && dsn[i] != '=' && !absl::ascii_isspace(dsn[i])) ++i;
    absl::string_view key = dsn.substr(key_begin, i - key_begin);
    while (i < n && absl::ascii_isspace(dsn[i])) ++i;
    if (i == n || dsn[i] != '=') return false;
    ++i;
    while (i < n && absl::ascii_isspace(dsn[i])) ++i;
    const size_t value_begin = i;
    if (i < n && dsn[i] == '\'') {
      ++i;
      while (i < n && dsn[i] != '\'') {
        if (dsn[i] == '\\' && i + 1 < n) ++i;
        ++i;
      }
      if (i == n) {
        // Unterminated quote: everything after the keyword may be secret.
        if (key == "password") spans->push_back({value_begin, n});
        return false;
      }
      ++i;
    } else {
      while (i < n && !absl::ascii_isspace(dsn[i])) {
        if (dsn[i] == '\\' && i + 1 < n) ++i;
        ++i;
      }
    }
    if (key == "password") spans->push_back({value_begin, i});
  }
}

std::string MaskSpans(absl::string_view text, std::vector<std::pair<size_t, size_t>> spans) {
  std::sort(spans.begin(), spans.end());
  std::string out;
  size_t pos = 0;
  for (const auto& [begin, end] : spans) {
    if (begin < pos) continue;
    absl::StrAppend(&out, text.substr(pos, begin - pos), kMask);
    pos = end;
  }
  absl::StrAppend(&out, text.substr(pos));
  return out;
}

}  // namespace

std::string RedactDsn(absl::string_view dsn) {
  if (IsUri(dsn)) return MaskSpans(dsn, FindUriSecrets(dsn).spans);
  std::vector<std::pair<size_t, size_t>> spans;
  if (FindKeywordSecrets(dsn, &spans)) return MaskSpans(dsn, spans);
  // Does not tokenize: keep what certainly precedes any "password".
  const size_t p = dsn.find("password");
  if (!spans.empty() || p != absl::string_view::npos) {
    const size_t cut = spans.empty() ? p : spans.front().first;
    return absl::StrCat(dsn.substr(0, cut), kMask);
  }
  return std::string(dsn);
}

namespace pg {

Secrets::Secrets(const std::string& dsn) : dsn_(dsn), display_(RedactDsn(dsn)) {
  auto add = [this](std::string s) {
    if (!s.empty() && std::find(secrets_.begin(), secrets_.end(), s) == secrets_.end()) {
      secrets_.push_back(std::move(s));
    }
  };
  std::vector<std::pair<size_t, size_t>> spans;
  if (IsUri(dsn)) {
    spans = FindUriSecrets(dsn).spans;
  } else {
    FindKeywordSecrets(dsn, &spans);
  }
  for (const auto& [begin, end] : spans) {
    const std::string raw = dsn.substr(begin, end - begin);
    add(raw);
    add(PercentDecode(raw));
    // Quoted keyword values as libpq reads them.
    if (raw.size() >= 2 && raw.front() == '\'' && raw.back() == '\'') {
      std::string unquoted;
      for (size_t i = 1; i + 1 < raw.size(); ++i) {
        if (raw[i] == '\\' && i + 2 < raw.size()) ++i;
        unquoted.push_back(raw[i]);
      }
      add(unquoted);
    }
  }
  // What libpq itself makes of the DSN (covers forms parsed differently).
  char* err = nullptr;
  if (PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err); opts != nullptr) {
    for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
      if (o->val != nullptr && std::strcmp(o->keyword, "password") == 0) add(o->val);
    }
    PQconninfoFree(opts);
  }
  if (err != nullptr) PQfreemem(err);
  if (const char* env = std::getenv("PGPASSWORD"); env != nullptr) add(env);
  // Longest first, so a secret that contains another is replaced whole.
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Secrets::Scrub(absl::string_view text) const {
  std::string out = absl::StrReplaceAll(text, {{dsn_, display_}});
  for (const std::string& s : secrets_) out = absl::StrReplaceAll(out, {{s, kMask}});
  return out;
}

}  // namespace pg
}  // namespace blueprintsync::jobs
