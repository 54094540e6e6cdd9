#include "service/tencent/cloud_credentials.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service/tencent/cloud_credentials_internal.h"

namespace blueprintsync::tencent {
namespace {

using internal::EnvOr;
using internal::Getenv;
using internal::OrSystem;

}  // namespace

int64_t CredentialRefreshFailures(const CredentialProvider& provider) {
  int64_t total = 0;
  if (const auto* logging = dynamic_cast<const SourceLoggingCredentialProvider*>(&provider)) {
    return CredentialRefreshFailures(*logging->inner());
  }
  if (const auto* refreshing = dynamic_cast<const RefreshingCredentialProvider*>(&provider)) {
    total += refreshing->refresh_failures();
  }
  if (const auto* assume = dynamic_cast<const AssumeRoleCredentialProvider*>(&provider);
      assume != nullptr && assume->source() != nullptr) {
    total += CredentialRefreshFailures(*assume->source());
  }
  if (const auto* chain = dynamic_cast<const CredentialProviderChain*>(&provider)) {
    for (const std::shared_ptr<CredentialProvider>& p : chain->providers()) {
      if (p != nullptr) total += CredentialRefreshFailures(*p);
    }
  }
  return total;
}

namespace {

StsOptions StsOptionsFrom(const CloudChainOptions& options, const Getenv& getenv) {
  RefreshOptions refresh;
  refresh.clock = options.clock;
  StsOptions sts;
  sts.transport = options.transport != nullptr ? options.transport : MakeCurlTransport();
  sts.getenv = getenv;
  sts.refresh = refresh;
  return sts;
}

}  // namespace

absl::StatusOr<std::shared_ptr<CredentialProvider>> MakeServiceCredentials(
    CloudChainOptions options) {
  if (options.profile.empty()) {
    return std::make_shared<SourceLoggingCredentialProvider>(
        MakeCloudCredentialChain(std::move(options)));
  }
  const Getenv getenv = OrSystem(options.getenv);
  absl::StatusOr<std::shared_ptr<CredentialProvider>> profile =
      MakeNamedProfileProvider(options.profile, getenv);
  if (!profile.ok()) return profile.status();
  // Checked now: a profile without keys is a configuration error, and
  // reading a local file at start costs nothing.
  if (absl::StatusOr<Credentials> c = (*profile)->GetCredentials(); !c.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("credential profile \"", options.profile,
                                                      "\" unusable: ", c.status().message()));
  }
  std::shared_ptr<CredentialProvider> provider = *std::move(profile);
  if (!EnvOr(getenv, kEnvRoleArn, "").empty()) {
    provider =
        std::make_shared<AssumeRoleCredentialProvider>(provider, StsOptionsFrom(options, getenv));
  }
  return std::make_shared<SourceLoggingCredentialProvider>(std::move(provider));
}

std::shared_ptr<CredentialProvider> MakeCloudCredentialChain(CloudChainOptions options) {
  const Getenv getenv = OrSystem(options.getenv);
  const StsOptions sts = StsOptionsFrom(options, getenv);
  CvmRoleOptions cvm;
  cvm.getter = options.getter;
  cvm.getenv = getenv;
  cvm.refresh = sts.refresh;
  auto base =
      std::make_shared<CredentialProviderChain>(std::vector<std::shared_ptr<CredentialProvider>>{
          std::make_shared<EnvCredentialProvider>(getenv),
          std::make_shared<ProfileCredentialProvider>("", getenv),
          std::make_shared<TkeOidcCredentialProvider>(sts),
          std::make_shared<CvmRoleCredentialProvider>(cvm)});
  if (EnvOr(getenv, kEnvRoleArn, "").empty()) return base;
  return std::make_shared<AssumeRoleCredentialProvider>(base, sts);
}

}  // namespace blueprintsync::tencent
