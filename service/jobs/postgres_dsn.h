// Keeping a PostgreSQL DSN's password out of every log line and error: the
// DSN as shown (RedactDsn) and the scrubbing of text that may quote it
// (pg::Secrets), for the libpq layer (postgres_connection.h) and the stores
// built on it.
#ifndef BLUEPRINTSYNC_SERVICE_JOBS_POSTGRES_DSN_H_
#define BLUEPRINTSYNC_SERVICE_JOBS_POSTGRES_DSN_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace blueprintsync::jobs {

// The DSN with every password replaced by "****", for logs and errors.
// Accepts both libpq forms: URIs (postgres://user:pw@host/db?password=pw)
// and keyword=value strings (host=h password='p w'). Errs towards hiding
// too much when the text does not parse.
std::string RedactDsn(absl::string_view dsn);

namespace pg {

// What a DSN is shown as and which strings must never be shown.
class Secrets {
 public:
  explicit Secrets(const std::string& dsn);
  const std::string& display() const { return display_; }
  // `text` with the raw DSN replaced by its redacted form and every known
  // secret (the DSN's password as written and as libpq decodes it,
  // PGPASSWORD) replaced by "****".
  std::string Scrub(absl::string_view text) const;

 private:
  std::string dsn_;
  std::string display_;
  std::vector<std::string> secrets_;
};

}  // namespace pg
}  // namespace blueprintsync::jobs

#endif  // BLUEPRINTSYNC_SERVICE_JOBS_POSTGRES_DSN_H_
