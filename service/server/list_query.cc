#include "service/server/list_query.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "blueprintsync/internal/job_record.pb.h"
#include "blueprintsync/internal/policy_record.pb.h"
#include "service/common/display.h"
#include "service/jobs/job_state.h"
#include "service/tencent/crypto.h"

namespace blueprintsync::server {
namespace {

constexpr absl::string_view kLabelsPrefix = "labels.";

// A filter error about a rule of one condition (the message says which).
absl::Status FilterError(absl::string_view what) {
  return jobs::InvalidField("filter", "INVALID_FILTER", what);
}

absl::Status InvalidPageToken() {
  return jobs::InvalidField("page_token", "INVALID_PAGE_TOKEN",
                            "page_token is not one this service issued");
}

// What one list method's filter accepts, for its syntax errors. Both
// methods share the grammar (conditions `field OP value` joined by AND);
// they differ in fields and in which field may be compared with more
// than "=".
struct FilterLanguage {
  absl::string_view expected;       // an example and the fields
  absl::string_view ordered_field;  // compared with = != < <= > >=; "" if none
};

constexpr FilterLanguage kJobFilter{
    "conditions like state = RUNNING AND labels.team = web on state, blueprint_id, "
    "source_region, request_id, creator, destination_region, retry_of, policy, labels.<key> or "
    "create_time",
    "create_time"};

constexpr FilterLanguage kPolicyFilter{
    "conditions like in_sync = false AND labels.team = web on in_sync, paused, source_region "
    "or labels.<key>",
    ""};

// A filter error about the syntax, with a reminder of what is accepted.
// (Messages stay under 512 bytes: values are shown cut to 64 bytes.)
absl::Status BadFilter(absl::string_view what, const FilterLanguage& language) {
  return FilterError(absl::StrCat(what, "; expected ", language.expected));
}

struct Token {
  std::string text;
  bool quoted = false;
  bool op = false;  // = != < <= > >=
};

bool IsOperatorStart(char c) { return c == '=' || c == '!' || c == '<' || c == '>'; }

// Splits the filter into tokens: words, operators and quoted strings.
absl::StatusOr<std::vector<Token>> Tokenize(absl::string_view f, const FilterLanguage& language) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < f.size()) {
    const char c = f[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (IsOperatorStart(c)) {
      const bool two = c != '=' && i + 1 < f.size() && f[i + 1] == '=';
      if (c == '!' && !two) return BadFilter("\"!\" must be followed by \"=\"", language);
      out.push_back(Token{std::string(f.substr(i, two ? 2 : 1)), false, true});
      i += two ? 2 : 1;
    } else if (c == '"') {
      const size_t end = f.find('"', i + 1);
      if (end == absl::string_view::npos) return BadFilter("unterminated quoted value", language);
      out.push_back(Token{std::string(f.substr(i + 1, end - i - 1)), true, false});
      i = end + 1;
    } else {
      size_t j = i;
      while (j < f.size() && !std::isspace(static_cast<unsigned char>(f[j])) &&
             !IsOperatorStart(f[j]) && f[j] != '"') {
        ++j;
      }
      out.push_back(Token{std::string(f.substr(i, j - i)), false, false});
      i = j;
    }
  }
  return out;
}

bool IsAlnum(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); }

// The name part of a Kubernetes label key: 1-63 of [A-Za-z0-9._-],
// beginning and ending with an alphanumeric.
bool IsLabelName(absl::string_view n) {
  if (n.empty() || n.size() > 63 || !IsAlnum(n.front()) || !IsAlnum(n.back())) return false;
  return std::all_of(n.begin(), n.end(),
                     [](char c) { return IsAlnum(c) || c == '.' || c == '_' || c == '-'; });
}

// A DNS subdomain (RFC 1123): at most 253 characters, dot-separated labels
// of 1-63 [a-z0-9-] beginning and ending with [a-z0-9].
bool IsDnsSubdomain(absl::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (absl::string_view label : absl::StrSplit(s, '.')) {
    auto lower_alnum = [](char c) { return absl::ascii_isdigit(c) || absl::ascii_islower(c); };
    if (label.empty() || label.size() > 63 || !lower_alnum(label.front()) ||
        !lower_alnum(label.back())) {
      return false;
    }
    if (!std::all_of(label.begin(), label.end(),
                     [&](char c) { return lower_alnum(c) || c == '-'; })) {
      return false;
    }
  }
  return true;
}

bool IsLabelKey(absl::string_view key) {
  const size_t slash = key.find('/');
  if (slash == absl::string_view::npos) return IsLabelName(key);
  return IsDnsSubdomain(key.substr(0, slash)) && IsLabelName(key.substr(slash + 1));
}

std::optional<jobs::TimeCondition::Op> TimeOp(absl::string_view op) {
  using Op = jobs::TimeCondition::Op;
  if (op == "=") return Op::kEq;
  if (op == "!=") return Op::kNe;
  if (op == "<") return Op::kLt;
  if (op == "<=") return Op::kLe;
  if (op == ">") return Op::kGt;
  if (op == ">=") return Op::kGe;
  return std::nullopt;
}

absl::StatusOr<jobs::TimeCondition> ParseTimeCondition(absl::string_view op,
                                                       const std::string& value) {
  absl::Time t;
  std::string err;
  // ParseTime also takes "infinite-future" and "infinite-past", which are
  // not RFC 3339.
  if (!absl::ParseTime(absl::RFC3339_full, value, &t, &err) || t == absl::InfiniteFuture() ||
      t == absl::InfinitePast()) {
    return FilterError(absl::StrCat("create_time value \"", Shown(value),
                                    "\" is not an RFC 3339 time such as "
                                    "\"2026-12-01T00:00:00Z\" or \"2026-12-01T08:00:00+08:00\""));
  }
  return jobs::TimeCondition{*TimeOp(op), t};
}

absl::Status ParseState(const std::string& value, jobs::JobQuery& q) {
  v1::SyncJob::State s;
  if (!v1::SyncJob::State_Parse(absl::AsciiStrToUpper(value), &s) ||
      s == v1::SyncJob::STATE_UNSPECIFIED) {
    return FilterError(
        absl::StrCat("unknown state \"", Shown(value),
                     "\" (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLING or CANCELLED)"));
  }
  q.state = s;
  return absl::OkStatus();
}

// The JobQuery field that `field = value` sets, for the plain text fields.
std::optional<std::string>* TextField(const std::string& field, jobs::JobQuery& q) {
  if (field == "blueprint_id") return &q.blueprint_id;
  if (field == "source_region") return &q.source_region;
  if (field == "request_id") return &q.request_id;
  if (field == "creator") return &q.creator;
  if (field == "destination_region") return &q.destination_region;
  if (field == "retry_of") return &q.retry_of;
  if (field == "policy") return &q.policy;
  return nullptr;
}

// One `field OP value` condition of a filter.
struct Condition {
  const std::string& field;
  const std::string& op;
  const std::string& value;
};

// Checks the parts of a condition on `field` that every "=" field shares:
// the operator, at most one use (`seen` holds the fields used so far),
// and for labels.<key> the key; `repeatable` says which fields may repeat.
absl::Status CheckEquality(const Condition& c, std::set<std::string>& seen,
                           absl::string_view repeatable) {
  if (c.op != "=") {
    return FilterError(
        absl::StrCat(Shown(c.field), " can only be compared with \"=\" (got \"", c.op, "\")"));
  }
  if (!seen.insert(c.field).second) {
    return FilterError(absl::StrCat(Shown(c.field), " is used more than once (each field at most ",
                                    "once, except ", repeatable, ")"));
  }
  if (absl::StartsWith(c.field, kLabelsPrefix)) {
    const absl::string_view key = absl::string_view(c.field).substr(kLabelsPrefix.size());
    if (!IsLabelKey(key)) {
      return FilterError(absl::StrCat(
          "\"", Shown(key),
          "\" is not a label key: an optional DNS subdomain prefix of at most 253 "
          "characters and \"/\", then a name of 1-63 characters [A-Za-z0-9._-] beginning and "
          "ending with a letter or digit"));
    }
  }
  return absl::OkStatus();
}

// Applies one condition to `q`; `seen` holds the fields used so far.
absl::Status ApplyJobCondition(const Condition& c, std::set<std::string>& seen, jobs::JobQuery& q) {
  if (c.field == "create_time") {
    auto condition = ParseTimeCondition(c.op, c.value);
    if (!condition.ok()) return condition.status();
    q.create_time.push_back(*condition);
    return absl::OkStatus();
  }
  const bool is_label = absl::StartsWith(c.field, kLabelsPrefix);
  std::optional<std::string>* text = TextField(c.field, q);
  if (c.field != "state" && !is_label && text == nullptr) {
    return BadFilter(absl::StrCat("unknown field \"", Shown(c.field), "\""), kJobFilter);
  }
  if (auto s = CheckEquality(c, seen, "create_time and labels with distinct keys"); !s.ok()) {
    return s;
  }
  if (c.field == "state") return ParseState(c.value, q);
  if (is_label) {
    q.labels[c.field.substr(kLabelsPrefix.size())] = c.value;
    return absl::OkStatus();
  }
  *text = c.value;
  return absl::OkStatus();
}

absl::Status ParseBool(const Condition& c, std::optional<bool>& out) {
  const std::string value = absl::AsciiStrToLower(c.value);
  if (value != "true" && value != "false") {
    return FilterError(
        absl::StrCat(c.field, " value \"", Shown(c.value), "\" is not true or false"));
  }
  out = value == "true";
  return absl::OkStatus();
}

absl::Status ApplyPolicyCondition(const Condition& c, std::set<std::string>& seen,
                                  policies::PolicyQuery& q) {
  const bool is_label = absl::StartsWith(c.field, kLabelsPrefix);
  if (c.field != "in_sync" && c.field != "paused" && c.field != "source_region" && !is_label) {
    return BadFilter(absl::StrCat("unknown field \"", Shown(c.field), "\""), kPolicyFilter);
  }
  if (auto s = CheckEquality(c, seen, "labels with distinct keys"); !s.ok()) return s;
  if (c.field == "in_sync") return ParseBool(c, q.in_sync);
  if (c.field == "paused") return ParseBool(c, q.paused);
  if (c.field == "source_region") {
    q.source_region = c.value;
  } else {
    q.labels[c.field.substr(kLabelsPrefix.size())] = c.value;
  }
  return absl::OkStatus();
}

// Parses `filter` in the grammar both list methods share (conditions
// joined by AND) and hands each condition to `apply` as soon as it is
// read, so the first error in the text is the one reported.
template <typename Apply>
absl::Status ParseFilter(const std::string& filter, const FilterLanguage& language, Apply apply) {
  if (filter.size() > kMaxFilterBytes) {
    return jobs::InvalidField("filter", "FILTER_TOO_LONG",
                              absl::StrCat("filter is longer than ", kMaxFilterBytes, " bytes"));
  }
  auto tokens = Tokenize(filter, language);
  if (!tokens.ok()) return tokens.status();
  const std::vector<Token>& t = *tokens;
  for (size_t i = 0; i < t.size();) {
    if (i + 3 > t.size()) {
      return BadFilter("incomplete condition: expected field = value", language);
    }
    const Token& field = t[i];
    if (!t[i + 1].op) {
      const bool ordered = !language.ordered_field.empty() && field.text == language.ordered_field;
      return BadFilter(absl::StrCat("expected ", ordered ? "one of = != < <= > >=" : "\"=\"",
                                    " after ", Shown(field.text)),
                       language);
    }
    if (t[i + 2].op) {
      return BadFilter(
          absl::StrCat("expected a value after ", Shown(field.text), " ", t[i + 1].text), language);
    }
    if (field.quoted || field.op) {
      return BadFilter(absl::StrCat("unknown field \"", Shown(field.text), "\""), language);
    }
    if (auto s = apply(Condition{field.text, t[i + 1].text, t[i + 2].text}); !s.ok()) return s;
    i += 3;
    if (i < t.size()) {
      if (t[i].quoted || t[i].op || absl::AsciiStrToUpper(t[i].text) != "AND") {
        return BadFilter(absl::StrCat("expected AND, got \"", Shown(t[i].text), "\""), language);
      }
      ++i;
      if (i >= t.size()) return BadFilter("AND must be followed by a condition", language);
    }
  }
  return absl::OkStatus();
}

// page_size: 0 means the default; above the maximum, the maximum.
absl::StatusOr<int> PageSize(int32_t page_size) {
  if (page_size < 0) {
    return jobs::InvalidField("page_size", "NEGATIVE_PAGE_SIZE",
                              absl::StrCat("page_size must not be negative, got ", page_size));
  }
  return page_size == 0 ? kDefaultPageSize : std::min(page_size, kMaxPageSize);
}

// The serialized token in `page_token`, if it is one this service could
// have issued (base64url of a `Token` message, bounded); INVALID_PAGE_TOKEN
// otherwise.
template <typename Token>
absl::StatusOr<Token> DecodePageToken(const std::string& page_token) {
  std::string raw;
  Token token;
  if (page_token.size() > 1024 || !absl::WebSafeBase64Unescape(page_token, &raw) ||
      !token.ParseFromString(raw)) {
    return InvalidPageToken();
  }
  return token;
}

absl::Status CheckTokenFilter(const std::string& token_sha256, const std::string& filter) {
  if (token_sha256 != tencent::crypto::Sha256Hex(filter)) {
    return jobs::InvalidField("page_token", "PAGE_TOKEN_FILTER_MISMATCH",
                              "page_token was issued for a different filter");
  }
  return absl::OkStatus();
}

template <typename Token>
std::string EncodePageToken(const Token& token) {
  std::string out;
  absl::WebSafeBase64Escape(token.SerializeAsString(), &out);
  return out;
}

// Whether order_by asks for newest first.
absl::StatusOr<bool> ParseOrderBy(const std::string& order_by) {
  std::vector<absl::string_view> words =
      absl::StrSplit(order_by, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty());
  if (words.empty()) return true;
  if (words[0] == "create_time" && words.size() <= 2) {
    const std::string direction = words.size() == 1 ? "asc" : absl::AsciiStrToLower(words[1]);
    if (direction == "desc") return true;
    if (direction == "asc") return false;
  }
  return jobs::InvalidField(
      "order_by", "INVALID_ORDER_BY",
      absl::StrCat("order_by must be \"create_time desc\" (newest first, the default) or "
                   "\"create_time\" (oldest first), got \"",
                   Shown(order_by), "\""));
}

absl::Status ApplyPageToken(const v1::ListSyncJobsRequest& request, jobs::JobQuery& q) {
  auto token = DecodePageToken<internal::PageToken>(request.page_token());
  if (!token.ok()) return token.status();
  if (token->cursor() <= 0) return InvalidPageToken();
  if (auto s = CheckTokenFilter(token->filter_sha256(), request.filter()); !s.ok()) return s;
  if (token->oldest_first() == q.newest_first) {
    return jobs::InvalidField("page_token", "PAGE_TOKEN_ORDER_MISMATCH",
                              "page_token was issued for a different order_by");
  }
  q.cursor = token->cursor();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<jobs::JobQuery> ParseListRequest(const v1::ListSyncJobsRequest& request) {
  jobs::JobQuery q;
  auto page_size = PageSize(request.page_size());
  if (!page_size.ok()) return page_size.status();
  q.page_size = *page_size;
  std::set<std::string> seen;
  if (auto s = ParseFilter(request.filter(), kJobFilter,
                           [&](const Condition& c) { return ApplyJobCondition(c, seen, q); });
      !s.ok()) {
    return s;
  }
  auto newest_first = ParseOrderBy(request.order_by());
  if (!newest_first.ok()) return newest_first.status();
  q.newest_first = *newest_first;
  if (!request.page_token().empty()) {
    if (auto s = ApplyPageToken(request, q); !s.ok()) return s;
  }
  return q;
}

std::string MakePageToken(int64_t cursor, const v1::ListSyncJobsRequest& request) {
  internal::PageToken token;
  token.set_cursor(cursor);
  token.set_filter_sha256(tencent::crypto::Sha256Hex(request.filter()));
  // The request was accepted, so its order_by parses.
  token.set_oldest_first(!ParseOrderBy(request.order_by()).value_or(true));
  return EncodePageToken(token);
}

absl::StatusOr<policies::PolicyQuery> ParsePolicyListRequest(
    const v1::ListSyncPoliciesRequest& request) {
  policies::PolicyQuery q;
  auto page_size = PageSize(request.page_size());
  if (!page_size.ok()) return page_size.status();
  q.page_size = *page_size;
  std::set<std::string> seen;
  if (auto s = ParseFilter(request.filter(), kPolicyFilter,
                           [&](const Condition& c) { return ApplyPolicyCondition(c, seen, q); });
      !s.ok()) {
    return s;
  }
  if (!request.page_token().empty()) {
    auto token = DecodePageToken<internal::PolicyPageToken>(request.page_token());
    if (!token.ok()) return token.status();
    if (token->after_name().empty()) return InvalidPageToken();
    if (auto s = CheckTokenFilter(token->filter_sha256(), request.filter()); !s.ok()) return s;
    q.after_name = token->after_name();
  }
  return q;
}

std::string MakePolicyPageToken(const std::string& after_name,
                                const v1::ListSyncPoliciesRequest& request) {
  internal::PolicyPageToken token;
  token.set_after_name(after_name);
  token.set_filter_sha256(tencent::crypto::Sha256Hex(request.filter()));
  return EncodePageToken(token);
}

}  // namespace blueprintsync::server
