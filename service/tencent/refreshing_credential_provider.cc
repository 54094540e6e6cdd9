#include "service/tencent/refreshing_credential_provider.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "service/common/log.h"

namespace blueprintsync::tencent {

RefreshingCredentialProvider::RefreshingCredentialProvider(RefreshOptions options)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : SystemClock::Default()) {}

absl::Time RefreshingCredentialProvider::RefreshAt(const Credentials& c, absl::Time fetched) const {
  const absl::Duration lifetime = c.expiry - fetched;
  absl::Duration margin = std::max(options_.min_margin, lifetime * options_.margin_fraction);
  margin = std::min(margin, lifetime / 2);
  return c.expiry - margin;
}

absl::StatusOr<Credentials> RefreshingCredentialProvider::GetCredentials() {
  if (absl::Status configured = Configured(); !configured.ok()) return configured;
  {
    absl::MutexLock lock(&mu_);
    for (;;) {
      const absl::Time now = clock_->Now();
      if (current_.has_value() && now < refresh_at_) return *current_;
      const bool usable = current_.has_value() && now < current_->expiry;
      if (!refreshing_) break;  // this caller refreshes
      if (usable) return *current_;
      const uint64_t seen = attempts_;
      mu_.Await(absl::Condition(
          +[](bool* refreshing) { return !*refreshing; }, &refreshing_));
      if (attempts_ != seen && !last_attempt_.ok()) {
        // The refresh this caller waited for failed; share its outcome
        // rather than queueing another call behind it.
        if (current_.has_value() && clock_->Now() < current_->expiry) return *current_;
        return last_attempt_;
      }
    }
    refreshing_ = true;
  }

  absl::StatusOr<Credentials> fetched = Fetch();
  const absl::Time done = clock_->Now();
  if (fetched.ok()) {
    absl::Status invalid;
    if (fetched->secret_id.empty() || fetched->secret_key.empty()) {
      invalid = absl::InternalError("returned an empty SecretId or SecretKey");
    } else if (fetched->expiry <= done) {
      invalid = absl::UnavailableError(
          absl::StrCat("returned credentials that expired at ", absl::FormatTime(fetched->expiry)));
    }
    if (!invalid.ok()) fetched = invalid;
  }

  absl::StatusOr<Credentials> result;
  std::optional<std::string> warn_error;
  std::string warn_serving;
  int64_t failures = 0;
  {
    absl::MutexLock lock(&mu_);
    refreshing_ = false;
    ++attempts_;
    if (fetched.ok()) {
      current_ = *fetched;
      refresh_at_ = RefreshAt(*current_, done);
      last_attempt_ = absl::OkStatus();
      last_error_ = absl::OkStatus();
      result = *current_;
    } else if (absl::IsNotFound(fetched.status()) && !current_.has_value()) {
      // Simply not configured here: no failure, no warning.
      last_attempt_ = fetched.status();
      result = fetched.status();
    } else {
      absl::Status error = fetched.status();
      if (absl::IsNotFound(error)) {
        // It worked before, so this is a failure, not "not configured".
        error = absl::UnavailableError(error.message());
      }
      ++failures_;
      failures = failures_;
      last_attempt_ = error;
      last_error_ = error;
      warn_error = std::string(error.message());
      if (current_.has_value() && done < current_->expiry) {
        warn_serving = absl::StrCat(
            "cached credentials until ",
            absl::FormatTime(absl::RFC3339_sec, current_->expiry, absl::UTCTimeZone()));
        result = *current_;
        refresh_at_ = std::min(done + options_.failure_backoff, current_->expiry);
      } else {
        warn_serving = "none";
        if (current_.has_value()) {
          result = absl::Status(error.code(),
                                absl::StrCat("credentials expired at ",
                                             absl::FormatTime(absl::RFC3339_sec, current_->expiry,
                                                              absl::UTCTimeZone()),
                                             " and the refresh failed: ", error.message()));
        } else {
          result = error;
        }
      }
    }
  }
  const std::string name = Name();
  if (warn_error.has_value()) {
    log::Warn("credential refresh failed", {{"provider", name},
                                            {"error", *warn_error},
                                            {"serving", warn_serving},
                                            {"refresh_failures", failures}});
  } else if (fetched.ok()) {
    const std::string masked = MaskSecretId(fetched->secret_id);
    const std::string expiry =
        absl::FormatTime(absl::RFC3339_sec, fetched->expiry, absl::UTCTimeZone());
    log::Info("credentials refreshed",
              {{"provider", name}, {"secret_id", masked}, {"expires", expiry}});
  }
  return result;
}

int64_t RefreshingCredentialProvider::refresh_failures() const {
  absl::MutexLock lock(&mu_);
  return failures_;
}

absl::Status RefreshingCredentialProvider::last_refresh_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

}  // namespace blueprintsync::tencent
