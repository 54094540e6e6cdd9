// Credential providers: where the service gets the Tencent Cloud key it signs
// with. Every provider hands out the (SecretId, SecretKey, Token) triple as one
// value, so a caller never mixes an old id with a new key during a rotation.
//
// Error convention: a provider that simply is not configured here returns
// absl::NotFoundError (the chain moves on); a provider that is configured but
// broken (variable set but empty, profile without secret_key) returns another
// error, which stops the chain. Error messages name variables, files and
// providers, never a secret value.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_CREDENTIALS_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_CREDENTIALS_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace blueprintsync::tencent {

struct Credentials {
  std::string secret_id;
  std::string secret_key;
  std::string token;  // empty for long-term keys; sent as X-TC-Token otherwise
  // When temporary credentials stop working; InfiniteFuture for long-term keys.
  absl::Time expiry = absl::InfiniteFuture();
};

// "AKID****MPLE"-style form that is safe to log: at most the first 4 and last
// 4 characters of the SecretId. Never use it for keys or tokens.
std::string MaskSecretId(std::string_view secret_id);

class CredentialProvider {
 public:
  virtual ~CredentialProvider() = default;
  // Thread-safe. Returns the current triple (refreshing first if needed).
  virtual absl::StatusOr<Credentials> GetCredentials() = 0;
  // Human-readable name used in chain errors and logs, e.g. "environment".
  virtual std::string Name() const = 0;
  // Where the credentials the last successful GetCredentials() returned came
  // from, for the log ("environment", "profile prod from /root/.tccli/prod.credential",
  // "CVM role app-role"); never a secret. Name() unless a provider knows more.
  virtual std::string Source() const { return Name(); }
};

class StaticCredentialProvider final : public CredentialProvider {
 public:
  explicit StaticCredentialProvider(Credentials credentials);
  absl::StatusOr<Credentials> GetCredentials() override;
  std::string Name() const override { return "static"; }

 private:
  Credentials credentials_;
};

// Reads the environment on every call (cheap) so that a restarted sidecar or
// test can change it. Accepted variables:
//   TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY (both required together)
//   token: TENCENTCLOUD_SESSION_TOKEN, TENCENTCLOUD_TOKEN or
//          TENCENTCLOUD_SECURITY_TOKEN (first non-empty one wins; the names
//          used by the Node SDK, tccli and Terraform respectively).
class EnvCredentialProvider final : public CredentialProvider {
 public:
  using Getenv = std::function<std::optional<std::string>(const std::string&)>;
  EnvCredentialProvider();  // uses ::getenv
  explicit EnvCredentialProvider(Getenv getenv);
  absl::StatusOr<Credentials> GetCredentials() override;
  std::string Name() const override { return "environment"; }

 private:
  Getenv getenv_;
};

// INI profile file (the SDKs' format), section [default] or [`profile`],
// keys secret_id, secret_key and optional token. Path: the constructor
// argument if non-empty, else $TENCENTCLOUD_CREDENTIALS_FILE, else
// $HOME/.tencentcloud/credentials. A missing file is NotFound; a file
// without the section or the keys is an error.
class ProfileCredentialProvider final : public CredentialProvider {
 public:
  explicit ProfileCredentialProvider(std::string path = "");
  ProfileCredentialProvider(std::string path, EnvCredentialProvider::Getenv getenv,
                            std::string profile = "default");
  absl::StatusOr<Credentials> GetCredentials() override;
  std::string Name() const override;
  std::string Source() const override;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string profile_;
};

// tccli's (and Terraform's) credential file for one profile:
// `<dir>/<profile>.credential`, a JSON object with secretId, secretKey and
// optional token; dir is $TENCENTCLOUD_SHARED_CREDENTIALS_DIR or
// $HOME/.tccli. A missing file is NotFound; one without the keys an error.
class TccliCredentialProvider final : public CredentialProvider {
 public:
  TccliCredentialProvider(std::string path, std::string profile);
  absl::StatusOr<Credentials> GetCredentials() override;
  std::string Name() const override;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string profile_;
};

// A profile name: 1-64 of [A-Za-z0-9_.-], not starting with '.' (it becomes
// part of a file name). InvalidArgument naming the rule otherwise.
absl::Status CheckProfileName(std::string_view profile);

// The provider for a profile named by the operator (--tencent-profile,
// TENCENTCLOUD_PROFILE), as tccli and Terraform find it: section [profile]
// of the INI credentials file (ProfileCredentialProvider's path), else
// tccli's <dir>/<profile>.credential. A profile found in neither is
// FailedPrecondition naming the profile and both files: a named profile is
// never silently replaced by another source.
absl::StatusOr<std::shared_ptr<CredentialProvider>> MakeNamedProfileProvider(
    const std::string& profile, EnvCredentialProvider::Getenv getenv = nullptr);

// Tries each provider in order; the first success wins. NotFound moves on,
// any other error stops the chain. When every provider says NotFound the
// error is NotFound and lists what was tried:
//   "no Tencent Cloud credentials found; tried: environment (TENCENTCLOUD_SECRET_ID
//    and TENCENTCLOUD_SECRET_KEY not set); profile file $HOME/.tencentcloud/credentials
//    (no such file)"
class CredentialProviderChain final : public CredentialProvider {
 public:
  explicit CredentialProviderChain(std::vector<std::shared_ptr<CredentialProvider>> providers);
  absl::StatusOr<Credentials> GetCredentials() override;
  std::string Name() const override { return "chain"; }
  // The Source() of the member that answered last.
  std::string Source() const override;
  // For collecting the members' refresh metrics (CredentialRefreshFailures).
  const std::vector<std::shared_ptr<CredentialProvider>>& providers() const { return providers_; }

 private:
  std::vector<std::shared_ptr<CredentialProvider>> providers_;
  mutable absl::Mutex mu_;
  const CredentialProvider* last_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// Logs where the credentials come from: once when they are first found and
// again whenever the source changes (a profile file mounted after start, a
// CVM role renamed), with the SecretId masked and never a key or token.
// Wraps the provider the service signs with.
class SourceLoggingCredentialProvider final : public CredentialProvider {
 public:
  explicit SourceLoggingCredentialProvider(std::shared_ptr<CredentialProvider> inner);
  absl::StatusOr<Credentials> GetCredentials() override;
  std::string Name() const override { return inner_->Name(); }
  std::string Source() const override { return inner_->Source(); }
  const std::shared_ptr<CredentialProvider>& inner() const { return inner_; }

 private:
  const std::shared_ptr<CredentialProvider> inner_;
  absl::Mutex mu_;
  std::string logged_ ABSL_GUARDED_BY(mu_);  // "source|masked id" last logged
};

// The service's chain, first success wins (cloud_credentials.h has the
// providers and their variables):
//   1. environment   TENCENTCLOUD_SECRET_ID / _SECRET_KEY [/ token]
//   2. profile file  $TENCENTCLOUD_CREDENTIALS_FILE or ~/.tencentcloud/credentials
//   3. TKE OIDC      TKE_* variables of TKE's pod-identity-webhook (STS
//                    AssumeRoleWithWebIdentity)
//   4. CVM role      the instance metadata service (1 s connect, 2 s total)
// An explicit key (1, 2) wins over an ambient identity (3, 4), as in every
// Tencent SDK. The Python/Java/Node SDKs try the CVM role before TKE OIDC; we
// do the opposite on purpose: a TKE pod also runs on a CVM, and that node's
// role is not the pod's identity (nor should it win when the webhook has
// injected one). When TENCENTCLOUD_ROLE_ARN is set the
// whole chain above only supplies the key that signs STS AssumeRole, and the
// assumed role's temporary triple is what the service signs with.
std::shared_ptr<CredentialProvider> MakeDefaultCredentialChain();

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_CREDENTIALS_H_
