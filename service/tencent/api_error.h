// ApiError: the typed outcome of a failed Tencent Cloud API call, carried
// inside an absl::Status payload so that every layer can keep returning
// absl::Status / absl::StatusOr<T> while the job layer can still ask the one
// question that matters for a non-idempotent API: "could this call have been
// executed?" (ErrorKind::kOutcomeUnknown).
//
// The status code of a Status built by MakeStatus() is the canonical mapping
// from Tencent error codes to gRPC codes documented in the README; the gRPC
// handlers pass it through unchanged.
#ifndef BLUEPRINTSYNC_SERVICE_TENCENT_API_ERROR_H_
#define BLUEPRINTSYNC_SERVICE_TENCENT_API_ERROR_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace blueprintsync::tencent {

enum class ErrorKind {
  // Tencent answered with Response.Error; the request reached the service and
  // (except for kOutcomeUnknown cases decided by the client) was not executed.
  kApi,
  // A non-200 HTTP status whose body is not a Tencent error envelope.
  kHttpStatus,
  // Failed before any byte of the request was sent (DNS, connect, TLS): the
  // request was certainly not executed.
  kTransport,
  // The request may have been executed but no usable answer came back
  // (timeout after sending, connection reset, HTTP 5xx or InternalError on a
  // non-idempotent action, a success answer that cannot be parsed).
  kOutcomeUnknown,
  // HTTP 200 whose body is not the documented JSON shape.
  kMalformedResponse,
  // No usable credentials; the service's problem, never the caller's.
  kCredentials,
  // A local limit stopped the call before it was sent (caller deadline would
  // pass while waiting for rate-limit capacity, request too large, ...).
  kLocal,
};

std::string_view ErrorKindName(ErrorKind kind);

struct ApiError {
  ErrorKind kind = ErrorKind::kApi;
  // Tencent code ("InvalidParameterValue.Duplicated"), or for errors that
  // Tencent did not produce a synthetic one: "ClientError.NetworkError",
  // "ClientError.HttpStatusCodeError", "ClientError.ParseJsonError",
  // "ClientError.OutcomeUnknown", "ClientError.CredentialError",
  // "ClientError.DeadlineExceeded".
  std::string code;
  std::string message;     // never contains a secret, token or signature
  std::string request_id;  // Tencent RequestId when one came back
  std::string action;      // "SyncBlueprint", ...
  long http_status = 0;    // 0 when no HTTP response was received

  bool MayHaveExecuted() const { return kind == ErrorKind::kOutcomeUnknown; }
};

// The documented Tencent-code -> canonical code mapping (see README "Errors").
absl::StatusCode CanonicalCode(const ApiError& error);

// Builds a Status whose code is CanonicalCode(error), whose message is
// "<action>: <code>: <message> (RequestId <id>)" and which carries `error`
// as a payload retrievable with GetApiError().
absl::Status MakeStatus(const ApiError& error);

// The ApiError carried by `status`, if it has one.
std::optional<ApiError> GetApiError(const absl::Status& status);

}  // namespace blueprintsync::tencent

#endif  // BLUEPRINTSYNC_SERVICE_TENCENT_API_ERROR_H_
