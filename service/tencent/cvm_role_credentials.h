// The credential provider for the CAM role bound to the CVM/Lighthouse
// instance the service runs on, read from the instance metadata service.
//
// Configuration comes from the environment (read once, at construction,
// through an injectable getenv so tests never mutate the real environment):
//   TENCENTCLOUD_CVM_ROLE
//       CAM role name; when unset it is discovered from the metadata service.
//   TENCENTCLOUD_METADATA_ENDPOINT
//       Base URL of the role credentials directory, default
//       http://metadata.tencentyun.com/latest/meta-data/cam/security-credentials/
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_CVM_ROLE_CREDENTIALS_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_CVM_ROLE_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/tencent/credentials.h"
#include "service/tencent/http_transport.h"
#include "service/tencent/refreshing_credential_provider.h"

namespace blueprintsync::tencent {

inline constexpr char kDefaultMetadataEndpoint[] =
    "http://metadata.tencentyun.com/latest/meta-data/cam/security-credentials/";

inline constexpr char kEnvCvmRole[] = "TENCENTCLOUD_CVM_ROLE";
inline constexpr char kEnvMetadataEndpoint[] = "TENCENTCLOUD_METADATA_ENDPOINT";

struct CvmRoleOptions {
  std::shared_ptr<HttpGetter> getter;    // nullptr = MakeCurlGetter()
  EnvCredentialProvider::Getenv getenv;  // nullptr = ::getenv
  RefreshOptions refresh;
  // Short: off Tencent Cloud the metadata host does not answer at all, and
  // every chain lookup that reaches this provider pays these.
  absl::Duration connect_timeout = absl::Seconds(1);
  absl::Duration timeout = absl::Seconds(2);
};

// CAM role of this CVM/Lighthouse instance. Role discovery that finds no
// metadata service (connection refused, DNS failure, timeout) or no role
// (HTTP 404) is NotFound so the chain moves on; with TENCENTCLOUD_CVM_ROLE set
// every failure is an error.
class CvmRoleCredentialProvider final : public RefreshingCredentialProvider {
 public:
  explicit CvmRoleCredentialProvider(CvmRoleOptions options = {});
  std::string Name() const override { return "CVM role"; }
  std::string Source() const override;

 private:
  absl::StatusOr<Credentials> Fetch() override;
  absl::StatusOr<std::string> DiscoverRole();

  const CvmRoleOptions options_;
  const std::shared_ptr<HttpGetter> getter_;
  std::string base_;  // ends with '/'
  const bool role_from_env_;
  mutable absl::Mutex role_mu_;
  std::string role_ ABSL_GUARDED_BY(role_mu_);
};

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_CVM_ROLE_CREDENTIALS_H_
