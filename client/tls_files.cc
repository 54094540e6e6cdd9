#include "client/tls_files.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/printable.h"

namespace blueprintsync::cli {
namespace {

// Far above any real certificate bundle; bounds what a wrong path (a log
// file, a device) can make the CLI read.
constexpr size_t kMaxPemBytes = 1 << 20;

absl::Status FileError(const char* flag, const std::string& path, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, ": ", Printable(path, 256), ": ", why));
}

// The file's text, which must contain `marker` ("BEGIN CERTIFICATE"...);
// the error says what it should hold, never what it does.
absl::StatusOr<std::string> ReadPem(const char* flag, const std::string& path,
                                    absl::string_view marker, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return FileError(flag, path, absl::StrCat("cannot read (", std::strerror(errno), ")"));
  std::string text;
  char buffer[16384];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxPemBytes) {
      return FileError(flag, path, absl::StrCat("larger than ", kMaxPemBytes, " bytes"));
    }
  }
  if (in.bad()) return FileError(flag, path, "read error");
  if (!absl::StrContains(text, marker)) {
    return FileError(flag, path, absl::StrCat("not ", what, " (no \"", marker, "\" line)"));
  }
  return text;
}

}  // namespace

absl::StatusOr<TlsMaterial> LoadTlsMaterial(const TlsFlags& flags) {
  TlsMaterial m;
  if (!flags.enabled()) return m;
  m.enabled = true;
  if (flags.cert.empty() != flags.key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--cert and --key: give both or neither (only --", flags.cert.empty() ? "key" : "cert",
        " is set); mTLS needs the client certificate and its private key"));
  }
  if (!flags.cacert.empty()) {
    auto pem = ReadPem("cacert", flags.cacert, "-----BEGIN CERTIFICATE-----",
                       "a PEM CA certificate bundle");
    if (!pem.ok()) return pem.status();
    m.root_pem = *std::move(pem);
  }
  if (!flags.cert.empty()) {
    auto cert =
        ReadPem("cert", flags.cert, "-----BEGIN CERTIFICATE-----", "a PEM certificate chain");
    if (!cert.ok()) return cert.status();
    auto key = ReadPem("key", flags.key, "PRIVATE KEY-----", "a PEM private key");
    if (!key.ok()) return key.status();
    if (absl::StrContains(*key, "ENCRYPTED")) {
      return FileError("key", flags.key, "encrypted; the CLI needs an unencrypted key");
    }
    m.cert_pem = *std::move(cert);
    m.key_pem = *std::move(key);
  }
  m.server_name = flags.server_name;
  return m;
}

}  // namespace blueprintsync::cli
