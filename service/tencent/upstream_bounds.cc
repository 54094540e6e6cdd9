#include "service/tencent/upstream_bounds.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "service/common/utf8.h"
#include "service/tencent/regions.h"

namespace blueprintsync::tencent::bounds {
namespace {

using utf8::DecodeUtf8;
using utf8::kReplacement;

// At most this much of a rejected value is quoted (escaped) in a message.
constexpr size_t kQuotedPrefix = 24;

bool IsControl(uint32_t cp) { return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F); }

// A short, escaped (so ASCII, so printable and valid UTF-8) quote of a
// rejected value: enough to recognise it, never the whole of it.
std::string Quote(std::string_view value) {
  const absl::string_view v(value.data(), value.size());
  if (v.size() <= kQuotedPrefix) return absl::StrCat("\"", absl::CEscape(v), "\"");
  return absl::StrCat("\"", absl::CEscape(v.substr(0, kQuotedPrefix)), "\"... (", v.size(),
                      " bytes)");
}

absl::Status Invalid(std::string_view path, std::string_view rule, std::string_view value) {
  return absl::InvalidArgumentError(absl::StrCat(absl::string_view(path.data(), path.size()), ": ",
                                                 absl::string_view(rule.data(), rule.size()),
                                                 ", got ", Quote(value)));
}

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::string BoundText(std::string_view text, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + kReplacement.size());
  size_t i = 0;
  // Cleaning stops soon after the limit: a 2 MiB message costs no more than
  // a short one.
  while (i < text.size() && out.size() <= max_bytes) {
    uint32_t cp = 0;
    const size_t n = DecodeUtf8(text.substr(i), &cp);
    if (n == 0 || IsControl(cp)) {
      out.append(kReplacement);
      i += n == 0 ? 1 : n;
    } else {
      out.append(text.data() + i, n);
      i += n;
    }
  }
  if (i == text.size() && out.size() <= max_bytes) return out;
  const std::string marker = absl::StrCat("\xE2\x80\xA6[cut: ", text.size(), " bytes]");
  size_t keep = max_bytes > marker.size() ? max_bytes - marker.size() : 0;
  // Back to a character boundary: `out` is valid UTF-8, so a continuation
  // byte (10xxxxxx) is never the first byte of a character.
  while (keep > 0 && (static_cast<unsigned char>(out[keep]) & 0xC0) == 0x80) --keep;
  out.resize(keep);
  out += marker;
  return out;
}

absl::Status CheckErrorCode(std::string_view path, std::string_view code) {
  constexpr std::string_view kRule = "not an error code (dotted words of [A-Za-z0-9_], at most 128 "
                                     "bytes)";
  if (code.empty() || code.size() > kMaxCodeBytes || !(IsUpper(code[0]) || IsLower(code[0]))) {
    return Invalid(path, kRule, code);
  }
  bool word_start = true;
  for (char c : code) {
    if (c == '.') {
      if (word_start) return Invalid(path, kRule, code);  // ".." or a leading dot
      word_start = true;
      continue;
    }
    if (!(IsUpper(c) || IsLower(c) || IsDigit(c) || c == '_')) return Invalid(path, kRule, code);
    word_start = false;
  }
  if (word_start) return Invalid(path, kRule, code);  // a trailing dot
  return absl::OkStatus();
}

absl::Status CheckBlueprintId(std::string_view path, std::string_view id) {
  if (!IsValidBlueprintId(id)) {
    return Invalid(path, "not a blueprint id (\"lhbp-\" followed by 8 of [a-z0-9])", id);
  }
  return absl::OkStatus();
}

absl::Status CheckRegion(std::string_view path, std::string_view region) {
  constexpr std::string_view kRule =
      "not a region (a letter, then [a-z0-9-], at most 32 bytes, e.g. \"ap-guangzhou\")";
  if (region.empty() || region.size() > kMaxRegionBytes || !IsLower(region[0])) {
    return Invalid(path, kRule, region);
  }
  for (char c : region) {
    if (!(IsLower(c) || IsDigit(c) || c == '-')) return Invalid(path, kRule, region);
  }
  return absl::OkStatus();
}

absl::Status CheckEnumWord(std::string_view path, std::string_view value) {
  constexpr std::string_view kRule = "not an UPPER_SNAKE word of 1 to 64 bytes";
  if (value.empty() || value.size() > kMaxEnumBytes) return Invalid(path, kRule, value);
  for (char c : value) {
    if (!(IsUpper(c) || IsDigit(c) || c == '_')) return Invalid(path, kRule, value);
  }
  return absl::OkStatus();
}

absl::Status CheckName(std::string_view path, std::string_view name, size_t max_bytes) {
  if (name.size() > max_bytes) {
    return Invalid(path, absl::StrCat("longer than ", max_bytes, " bytes"), name);
  }
  for (size_t i = 0; i < name.size();) {
    uint32_t cp = 0;
    const size_t n = DecodeUtf8(name.substr(i), &cp);
    if (n == 0) return Invalid(path, "not valid UTF-8", name);
    if (IsControl(cp)) return Invalid(path, "holds a control character", name);
    i += n;
  }
  return absl::OkStatus();
}

absl::Status CheckTime(std::string_view path, std::string_view time) {
  constexpr std::string_view kRule =
      "not an ISO-8601 time (digits and \"-:.+TZ\", at most 40 bytes)";
  if (time.empty() || time.size() > kMaxTimeBytes) return Invalid(path, kRule, time);
  for (char c : time) {
    if (!(IsDigit(c) || c == '-' || c == ':' || c == '.' || c == '+' || c == 'T' || c == 'Z')) {
      return Invalid(path, kRule, time);
    }
  }
  return absl::OkStatus();
}

}  // namespace blueprintsync::tencent::bounds
