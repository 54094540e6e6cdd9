#include "service/tencent/credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "rapidjson/document.h"
#include "service/common/log.h"
#include "service/tencent/cloud_credentials.h"

namespace blueprintsync::tencent {
namespace {

constexpr char kEnvSecretId[] = "TENCENTCLOUD_SECRET_ID";
constexpr char kEnvSecretKey[] = "TENCENTCLOUD_SECRET_KEY";
constexpr const char* kEnvTokens[] = {"TENCENTCLOUD_SESSION_TOKEN", "TENCENTCLOUD_TOKEN",
                                      "TENCENTCLOUD_SECURITY_TOKEN"};
constexpr char kEnvCredentialsFile[] = "TENCENTCLOUD_CREDENTIALS_FILE";
// tccli's and Terraform's directory of <profile>.credential files.
constexpr char kEnvSharedCredentialsDir[] = "TENCENTCLOUD_SHARED_CREDENTIALS_DIR";
constexpr size_t kMaxProfileNameBytes = 64;

// A credentials file is a few hundred bytes; anything far larger is not one.
constexpr size_t kMaxProfileBytes = 64 * 1024;

std::optional<std::string> SystemGetenv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

// Values are trimmed: a key pasted with a trailing newline (a Kubernetes
// secret created from a file, say) signs wrongly and fails much later as an
// opaque AuthFailure.SignatureFailure. No real id, key or token contains
// surrounding whitespace.
std::optional<std::string> TrimmedEnv(const EnvCredentialProvider::Getenv& getenv,
                                      const std::string& name) {
  std::optional<std::string> value = getenv(name);
  if (!value.has_value()) return std::nullopt;
  return std::string(absl::StripAsciiWhitespace(*value));
}

std::string HomePath(const EnvCredentialProvider::Getenv& getenv, absl::string_view rest);

std::string ResolveProfilePath(std::string path, const EnvCredentialProvider::Getenv& getenv) {
  if (!path.empty()) return path;
  if (std::optional<std::string> file = getenv(kEnvCredentialsFile); file && !file->empty()) {
    return *file;
  }
  return HomePath(getenv, ".tencentcloud/credentials");
}

struct FileContents {
  std::string data;
  bool missing = false;
  int error = 0;  // errno of a failure other than "missing"
  bool too_large = false;
  bool not_regular = false;
};

FileContents ReadSmallFile(const std::string& path) {
  FileContents out;
  // O_NONBLOCK so that a FIFO at the path cannot hang us; it is rejected
  // below as not a regular file (and has no effect on regular files).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      out.missing = true;
    } else {
      out.error = errno;
    }
    return out;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    out.error = errno;
  } else if (!S_ISREG(st.st_mode)) {
    out.not_regular = true;
  } else {
    char buf[4096];
    while (true) {
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n < 0) {
        if (errno == EINTR) continue;
        out.error = errno;
        break;
      }
      if (n == 0) break;
      out.data.append(buf, static_cast<size_t>(n));
      if (out.data.size() > kMaxProfileBytes) {
        out.too_large = true;
        break;
      }
    }
  }
  ::close(fd);
  return out;
}

// The [`section`] section of an INI file: `key = value` lines, whole-line `#`
// and `;` comments. Comments are whole-line only so that a value is never cut
// at a character a token might contain.
std::map<std::string, std::string> IniSection(absl::string_view text, absl::string_view section,
                                              bool& has_section) {
  std::map<std::string, std::string> values;
  has_section = false;
  if (absl::StartsWith(text, "\xEF\xBB\xBF")) text.remove_prefix(3);  // UTF-8 BOM
  bool in_default = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      absl::string_view name = line.substr(1);
      const size_t close = name.find(']');
      if (close != absl::string_view::npos) name = name.substr(0, close);
      in_default = absl::StripAsciiWhitespace(name) == section;
      if (in_default) has_section = true;
      continue;
    }
    if (!in_default) continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    values[std::string(absl::StripAsciiWhitespace(line.substr(0, eq)))] =
        std::string(absl::StripAsciiWhitespace(line.substr(eq + 1)));
  }
  return values;
}

// The problem with a credentials file as read, or OK: the same words for
// the INI file and tccli's JSON files.
absl::Status FileProblem(const std::string& name, const FileContents& file) {
  if (file.missing) return absl::NotFoundError(absl::StrCat(name, " (no such file)"));
  if (file.error != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": cannot read: ", std::strerror(file.error)));
  }
  if (file.not_regular) {
    return absl::FailedPreconditionError(absl::StrCat(name, ": not a regular file"));
  }
  if (file.too_large) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": larger than ", kMaxProfileBytes, " bytes, not a credentials file"));
  }
  return absl::OkStatus();
}

std::string HomePath(const EnvCredentialProvider::Getenv& getenv, absl::string_view rest) {
  if (std::optional<std::string> home = getenv("HOME"); home && !home->empty()) {
    absl::string_view dir = *home;
    while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
    return absl::StrCat(dir, "/", rest);
  }
  return "";
}

std::string TccliPath(const std::string& profile, const EnvCredentialProvider::Getenv& getenv) {
  std::string dir;
  if (std::optional<std::string> d = getenv(kEnvSharedCredentialsDir); d && !d->empty()) {
    dir = *d;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  } else {
    dir = HomePath(getenv, ".tccli");
  }
  if (dir.empty()) return "";
  return absl::StrCat(dir, "/", profile, ".credential");
}

std::string Describe(const CredentialProvider& provider, const absl::Status& status) {
  const std::string name = provider.Name();
  if (absl::StartsWith(status.message(), name)) return std::string(status.message());
  return absl::StrCat(name, " (", status.message(), ")");
}

}  // namespace

std::string MaskSecretId(std::string_view secret_id) {
  // Show at most a quarter of the id at each end, so short (test) ids stay
  // mostly hidden too.
  const size_t keep = std::min<size_t>(4, secret_id.size() / 4);
  std::string masked(secret_id.substr(0, keep));
  masked += "****";
  masked += secret_id.substr(secret_id.size() - keep);
  return masked;
}

StaticCredentialProvider::StaticCredentialProvider(Credentials credentials)
    : credentials_(std::move(credentials)) {}

absl::StatusOr<Credentials> StaticCredentialProvider::GetCredentials() {
  if (credentials_.secret_id.empty() || credentials_.secret_key.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "static credentials: ", credentials_.secret_id.empty() ? "secret_id" : "secret_key",
        " is empty"));
  }
  return credentials_;
}

EnvCredentialProvider::EnvCredentialProvider() : EnvCredentialProvider(SystemGetenv) {}

EnvCredentialProvider::EnvCredentialProvider(Getenv getenv)
    : getenv_(getenv ? std::move(getenv) : Getenv(SystemGetenv)) {}

absl::StatusOr<Credentials> EnvCredentialProvider::GetCredentials() {
  const std::optional<std::string> id = TrimmedEnv(getenv_, kEnvSecretId);
  std::optional<std::string> key = TrimmedEnv(getenv_, kEnvSecretKey);
  if (!id.has_value() && !key.has_value()) {
    return absl::NotFoundError(absl::StrCat(kEnvSecretId, " and ", kEnvSecretKey, " not set"));
  }
  std::vector<std::string> problems;
  auto check = [&problems](const char* name, const std::optional<std::string>& value,
                           const char* other) {
    if (!value.has_value()) {
      problems.push_back(absl::StrCat(name, " is not set although ", other, " is"));
    } else if (value->empty()) {
      problems.push_back(absl::StrCat(name, " is set but empty"));
    }
  };
  check(kEnvSecretId, id, kEnvSecretKey);
  check(kEnvSecretKey, key, kEnvSecretId);
  if (!problems.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("environment credentials unusable: ", absl::StrJoin(problems, "; ")));
  }
  Credentials credentials;
  credentials.secret_id = *id;
  credentials.secret_key = std::move(*key);
  for (const char* name : kEnvTokens) {
    std::optional<std::string> token = TrimmedEnv(getenv_, name);
    if (token.has_value() && !token->empty()) {
      credentials.token = std::move(*token);
      break;
    }
  }
  return credentials;
}

ProfileCredentialProvider::ProfileCredentialProvider(std::string path)
    : ProfileCredentialProvider(std::move(path), SystemGetenv) {}

ProfileCredentialProvider::ProfileCredentialProvider(std::string path,
                                                     EnvCredentialProvider::Getenv getenv,
                                                     std::string profile)
    : path_(ResolveProfilePath(std::move(path),
                               getenv ? getenv : EnvCredentialProvider::Getenv(SystemGetenv))),
      profile_(std::move(profile)) {}

std::string ProfileCredentialProvider::Name() const {
  if (path_.empty()) return "profile file";
  return absl::StrCat("profile file ", path_);
}

std::string ProfileCredentialProvider::Source() const {
  return absl::StrCat("profile ", profile_, " from ", path_);
}

absl::StatusOr<Credentials> ProfileCredentialProvider::GetCredentials() {
  if (path_.empty()) {
    return absl::NotFoundError(
        absl::StrCat("profile file (no path: neither ", kEnvCredentialsFile, " nor HOME is set)"));
  }
  const FileContents file = ReadSmallFile(path_);
  if (absl::Status s = FileProblem(Name(), file); !s.ok()) return s;
  bool has_section = false;
  std::map<std::string, std::string> values = IniSection(file.data, profile_, has_section);
  if (!has_section) {
    return absl::FailedPreconditionError(
        absl::StrCat(Name(), ": no [", profile_, "] section (need secret_id and secret_key)"));
  }
  std::vector<std::string> missing;
  for (const char* key : {"secret_id", "secret_key"}) {
    auto it = values.find(key);
    if (it == values.end()) {
      missing.push_back(absl::StrCat(key, " is missing"));
    } else if (it->second.empty()) {
      missing.push_back(absl::StrCat(key, " is empty"));
    }
  }
  if (!missing.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(Name(), ": section [", profile_, "]: ", absl::StrJoin(missing, ", ")));
  }
  Credentials credentials;
  credentials.secret_id = std::move(values["secret_id"]);
  credentials.secret_key = std::move(values["secret_key"]);
  if (auto it = values.find("token"); it != values.end()) credentials.token = std::move(it->second);
  return credentials;
}

CredentialProviderChain::CredentialProviderChain(
    std::vector<std::shared_ptr<CredentialProvider>> providers)
    : providers_(std::move(providers)) {}

absl::StatusOr<Credentials> CredentialProviderChain::GetCredentials() {
  std::vector<std::string> tried;
  for (const std::shared_ptr<CredentialProvider>& provider : providers_) {
    if (provider == nullptr) continue;
    absl::StatusOr<Credentials> credentials = provider->GetCredentials();
    if (credentials.ok()) {
      absl::MutexLock lock(&mu_);
      last_ = provider.get();
      return credentials;
    }
    if (absl::IsNotFound(credentials.status())) {
      tried.push_back(Describe(*provider, credentials.status()));
      continue;
    }
    // A configured but broken source must not be skipped silently: falling
    // through to a later source would sign with credentials nobody intended.
    const std::string name = provider->Name();
    std::string message(credentials.status().message());
    if (!absl::StartsWith(message, name)) message = absl::StrCat(name, ": ", message);
    return absl::Status(credentials.status().code(), message);
  }
  return absl::NotFoundError(
      absl::StrCat("no Tencent Cloud credentials found; tried: ",
                   tried.empty() ? std::string("(no providers)") : absl::StrJoin(tried, "; ")));
}

std::string CredentialProviderChain::Source() const {
  const CredentialProvider* last = nullptr;
  {
    absl::MutexLock lock(&mu_);
    last = last_;
  }
  return last != nullptr ? last->Source() : Name();
}

TccliCredentialProvider::TccliCredentialProvider(std::string path, std::string profile)
    : path_(std::move(path)), profile_(std::move(profile)) {}

std::string TccliCredentialProvider::Name() const {
  return absl::StrCat("profile ", profile_, " from ", path_);
}

absl::StatusOr<Credentials> TccliCredentialProvider::GetCredentials() {
  const FileContents file = ReadSmallFile(path_);
  if (absl::Status s = FileProblem(Name(), file); !s.ok()) return s;
  rapidjson::Document doc;
  doc.Parse(file.data.data(), file.data.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    // The parser's position only: the text may hold a key.
    return absl::FailedPreconditionError(absl::StrCat(Name(), ": not a JSON object"));
  }
  auto member = [&doc](const char* name) -> std::optional<std::string> {
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd() || !it->value.IsString()) return std::nullopt;
    return std::string(absl::StripAsciiWhitespace(
        absl::string_view(it->value.GetString(), it->value.GetStringLength())));
  };
  std::vector<std::string> missing;
  std::optional<std::string> id = member("secretId");
  std::optional<std::string> key = member("secretKey");
  if (!id || id->empty()) missing.push_back("secretId is missing or empty");
  if (!key || key->empty()) missing.push_back("secretKey is missing or empty");
  if (!missing.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(Name(), ": ", absl::StrJoin(missing, ", ")));
  }
  Credentials credentials;
  credentials.secret_id = *std::move(id);
  credentials.secret_key = *std::move(key);
  if (std::optional<std::string> token = member("token")) credentials.token = *std::move(token);
  return credentials;
}

absl::Status CheckProfileName(std::string_view profile) {
  const bool ok_size = !profile.empty() && profile.size() <= kMaxProfileNameBytes;
  const bool ok_chars = std::all_of(profile.begin(), profile.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
  if (!ok_size || !ok_chars || profile.front() == '.') {
    return absl::InvalidArgumentError(absl::StrCat("a profile name is 1 to ", kMaxProfileNameBytes,
                                                   " of [A-Za-z0-9_.-], not starting with '.'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<CredentialProvider>> MakeNamedProfileProvider(
    const std::string& profile, EnvCredentialProvider::Getenv getenv) {
  if (absl::Status s = CheckProfileName(profile); !s.ok()) return s;
  if (!getenv) getenv = SystemGetenv;
  const std::string ini_path = ResolveProfilePath("", getenv);
  std::string ini_finding =
      "no credentials file (neither TENCENTCLOUD_CREDENTIALS_FILE nor HOME set)";
  if (!ini_path.empty()) {
    const FileContents file = ReadSmallFile(ini_path);
    if (file.missing) {
      ini_finding = absl::StrCat("no file ", ini_path);
    } else if (absl::Status s = FileProblem(ini_path, file); !s.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("credential profile \"", profile, "\": ", s.message()));
    } else {
      bool has_section = false;
      IniSection(file.data, profile, has_section);
      if (has_section) {
        return std::make_shared<ProfileCredentialProvider>(ini_path, getenv, profile);
      }
      ini_finding = absl::StrCat("no section [", profile, "] in ", ini_path);
    }
  }
  const std::string tccli_path = TccliPath(profile, getenv);
  if (!tccli_path.empty() && !ReadSmallFile(tccli_path).missing) {
    return std::make_shared<TccliCredentialProvider>(tccli_path, profile);
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "credential profile \"", profile,
      "\" (--tencent-profile / TENCENTCLOUD_PROFILE) not found: ", ini_finding, ", and ",
      tccli_path.empty()
          ? std::string(
                "no tccli directory (neither TENCENTCLOUD_SHARED_CREDENTIALS_DIR nor HOME set)")
          : absl::StrCat("no file ", tccli_path)));
}

SourceLoggingCredentialProvider::SourceLoggingCredentialProvider(
    std::shared_ptr<CredentialProvider> inner)
    : inner_(std::move(inner)) {}

absl::StatusOr<Credentials> SourceLoggingCredentialProvider::GetCredentials() {
  absl::StatusOr<Credentials> credentials = inner_->GetCredentials();
  if (!credentials.ok()) return credentials;
  const std::string source = inner_->Source();
  const std::string masked = MaskSecretId(credentials->secret_id);
  // Keyed on the source alone: temporary credentials (CVM role, STS, OIDC)
  // get a new SecretId at every refresh, which is not a change of source.
  const std::string& key = source;
  bool changed = false;
  std::string before;
  {
    absl::MutexLock lock(&mu_);
    if (logged_ != key) {
      before = std::exchange(logged_, key);
      changed = true;
    }
  }
  // Logged outside the lock: callers signing requests never wait on stdout.
  if (changed) {
    log::Info(before.empty() ? "Tencent Cloud credential source"
                             : "Tencent Cloud credential source changed",
              {{"source", source}, {"secret_id", masked}});
  }
  return credentials;
}

std::shared_ptr<CredentialProvider> MakeDefaultCredentialChain() {
  return MakeCloudCredentialChain(CloudChainOptions{});
}

}  // namespace blueprintsync::tencent
