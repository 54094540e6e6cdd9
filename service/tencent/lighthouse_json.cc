#include "service/tencent/lighthouse_json.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/tencent/api_envelope.h"
#include "service/tencent/json_fields.h"
#include "service/tencent/regions.h"
#include "service/tencent/upstream_bounds.h"

namespace blueprintsync::tencent::json {
namespace {

using rapidjson::Value;

constexpr char kParseJsonError[] = "ClientError.ParseJsonError";
// DescribeBlueprints answers at most 100 blueprints a call (Limit <= 100).
constexpr rapidjson::SizeType kMaxBlueprintSet = 100;
// Tencent has a few dozen regions; far more is not a region list.
constexpr rapidjson::SizeType kMaxRegionSet = 200;

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteString(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void WriteStringArray(Writer& w, const std::vector<std::string>& values) {
  w.StartArray();
  for (const std::string& v : values) WriteString(w, v);
  w.EndArray();
}

absl::Status MalformedStatus(std::string_view action, std::string message) {
  ApiError error;
  error.kind = ErrorKind::kMalformedResponse;
  error.code = kParseJsonError;
  error.message = std::move(message);
  error.action = std::string(action);
  error.http_status = 200;
  return MakeStatus(error);
}

// Shared driver: envelope, then the action-specific body via `decode`.
template <typename T, typename DecodeFn>
absl::StatusOr<T> Decode(std::string_view action, std::string_view body, DecodeFn decode) {
  rapidjson::Document doc;
  absl::StatusOr<ApiEnvelope> envelope = ReadApiEnvelope(action, body, doc);
  if (!envelope.ok()) return MalformedStatus(action, std::string(envelope.status().message()));
  if (envelope->api_error.has_value()) {
    envelope->api_error->http_status = 200;
    return MakeStatus(*envelope->api_error);
  }
  T out;
  out.request_id = envelope->request_id;
  if (absl::Status s = decode(*envelope->response, out); !s.ok()) {
    return MalformedStatus(action, std::string(s.message()));
  }
  return out;
}

#define BPS_RETURN_IF_ERROR(expr)                      \
  do {                                                 \
    if (absl::Status _s = (expr); !_s.ok()) return _s; \
  } while (false)

// A string field checked by `check` (when present and non-empty for
// nullable ones).
template <typename Check>
absl::Status GetChecked(const Value& v, const std::string& path, const char* key,
                        Presence presence, std::string* out, Check check) {
  BPS_RETURN_IF_ERROR(GetString(v, path, key, presence, out));
  if (presence == Presence::kNullable && out->empty()) return absl::OkStatus();
  return check(Path(path, key), *out);
}

// A free-text field, kept but bounded.
absl::Status GetText(const Value& v, const std::string& path, const char* key, std::string* out) {
  BPS_RETURN_IF_ERROR(GetString(v, path, key, Presence::kNullable, out));
  *out = bounds::BoundText(*out, bounds::kMaxFreeTextBytes);
  return absl::OkStatus();
}

// An array of at most `max` entries: more is not an answer to the request
// sent (the service never asks for more).
absl::StatusOr<const Value*> GetBoundedArray(const Value& object, const std::string& parent,
                                             const char* key, rapidjson::SizeType max) {
  absl::StatusOr<const Value*> set = GetArray(object, parent, key);
  if (!set.ok()) return set;
  if ((*set)->Size() > max) {
    return absl::InvalidArgumentError(absl::StrCat(Path(parent, key), ": ", (*set)->Size(),
                                                   " entries, more than the ", max, " allowed"));
  }
  return set;
}

absl::Status CheckBlueprintName(std::string_view path, std::string_view name) {
  return bounds::CheckName(path, name, bounds::kMaxBlueprintNameBytes);
}

absl::Status DecodeBlueprint(const Value& v, const std::string& path, Blueprint& out) {
  if (!v.IsObject()) return Mismatch(path, "an object", v);
  // What the service acts on (ids, states, names, times) must be well-formed;
  // what it only shows is bounded.
  BPS_RETURN_IF_ERROR(GetChecked(v, path, "BlueprintId", Presence::kRequired, &out.blueprint_id,
                                 bounds::CheckBlueprintId));
  BPS_RETURN_IF_ERROR(GetChecked(v, path, "BlueprintState", Presence::kRequired,
                                 &out.blueprint_state, bounds::CheckEnumWord));
  BPS_RETURN_IF_ERROR(GetChecked(v, path, "BlueprintName", Presence::kNullable,
                                 &out.blueprint_name, CheckBlueprintName));
  BPS_RETURN_IF_ERROR(GetChecked(v, path, "BlueprintType", Presence::kNullable,
                                 &out.blueprint_type, bounds::CheckEnumWord));
  BPS_RETURN_IF_ERROR(GetChecked(v, path, "PlatformType", Presence::kNullable, &out.platform_type,
                                 bounds::CheckEnumWord));
  BPS_RETURN_IF_ERROR(GetText(v, path, "OsName", &out.os_name));
  BPS_RETURN_IF_ERROR(GetText(v, path, "Description", &out.description));
  BPS_RETURN_IF_ERROR(GetChecked(v, path, "CreatedTime", Presence::kNullable, &out.created_time,
                                 bounds::CheckTime));
  BPS_RETURN_IF_ERROR(GetNonNegativeInt64(v, path, "RequiredSystemDiskSize", Presence::kNullable,
                                          &out.required_system_disk_size));
  return absl::OkStatus();
}

}  // namespace

std::string EncodeSyncBlueprint(const SyncBlueprintRequest& request) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("BlueprintId");
  WriteString(w, request.blueprint_id);
  w.Key("DestinationRegions");
  WriteStringArray(w, request.destination_regions);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string EncodeDescribeBlueprints(const DescribeBlueprintsRequest& request) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  if (!request.blueprint_ids.empty()) {
    w.Key("BlueprintIds");
    WriteStringArray(w, request.blueprint_ids);
  }
  if (!request.filters.empty()) {
    w.Key("Filters");
    w.StartArray();
    for (const DescribeFilter& filter : request.filters) {
      w.StartObject();
      w.Key("Name");
      WriteString(w, filter.name);
      w.Key("Values");
      WriteStringArray(w, filter.values);
      w.EndObject();
    }
    w.EndArray();
  }
  if (request.offset.has_value()) {
    w.Key("Offset");
    w.Int64(*request.offset);
  }
  if (request.limit.has_value()) {
    w.Key("Limit");
    w.Int64(*request.limit);
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string EncodeDescribeRegions() { return "{}"; }

std::string EncodeDeleteBlueprints(const DeleteBlueprintsRequest& request) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("BlueprintIds");
  WriteStringArray(w, request.blueprint_ids);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::StatusOr<SyncBlueprintResponse> DecodeSyncBlueprint(std::string_view body) {
  return Decode<SyncBlueprintResponse>(
      "SyncBlueprint", body, [](const Value& response, SyncBlueprintResponse& out) {
        const std::string parent = "Response";
        absl::StatusOr<const Value*> set = GetBoundedArray(
            response, parent, "DestinationRegionBlueprintSet",
            static_cast<rapidjson::SizeType>(kMaxDestinationRegions));
        if (!set.ok()) return set.status();
        const std::string set_path = Path(parent, "DestinationRegionBlueprintSet");
        for (rapidjson::SizeType i = 0; i < (*set)->Size(); ++i) {
          const Value& item = (**set)[i];
          const std::string path = Index(set_path, i);
          if (!item.IsObject()) return Mismatch(path, "an object", item);
          DestinationRegionBlueprint d;
          // These ids are stored on the job and polled: a malformed one
          // makes the answer malformed (reconciled, never resent).
          BPS_RETURN_IF_ERROR(GetChecked(item, path, "Region", Presence::kRequired, &d.region,
                                         bounds::CheckRegion));
          BPS_RETURN_IF_ERROR(GetChecked(item, path, "BlueprintId", Presence::kRequired,
                                         &d.blueprint_id, bounds::CheckBlueprintId));
          out.destinations.push_back(std::move(d));
        }
        return absl::OkStatus();
      });
}

absl::StatusOr<DescribeBlueprintsResponse> DecodeDescribeBlueprints(std::string_view body) {
  return Decode<DescribeBlueprintsResponse>(
      "DescribeBlueprints", body, [](const Value& response, DescribeBlueprintsResponse& out) {
        const std::string parent = "Response";
        BPS_RETURN_IF_ERROR(GetNonNegativeInt64(response, parent, "TotalCount", Presence::kRequired,
                                                &out.total_count));
        absl::StatusOr<const Value*> set =
            GetBoundedArray(response, parent, "BlueprintSet", kMaxBlueprintSet);
        if (!set.ok()) return set.status();
        const std::string set_path = Path(parent, "BlueprintSet");
        out.blueprints.reserve((*set)->Size());
        for (rapidjson::SizeType i = 0; i < (*set)->Size(); ++i) {
          Blueprint b;
          BPS_RETURN_IF_ERROR(DecodeBlueprint((**set)[i], Index(set_path, i), b));
          out.blueprints.push_back(std::move(b));
        }
        return absl::OkStatus();
      });
}

absl::StatusOr<DescribeRegionsResponse> DecodeDescribeRegions(std::string_view body) {
  return Decode<DescribeRegionsResponse>(
      "DescribeRegions", body, [](const Value& response, DescribeRegionsResponse& out) {
        const std::string parent = "Response";
        BPS_RETURN_IF_ERROR(GetNonNegativeInt64(response, parent, "TotalCount", Presence::kRequired,
                                                &out.total_count));
        absl::StatusOr<const Value*> set =
            GetBoundedArray(response, parent, "RegionSet", kMaxRegionSet);
        if (!set.ok()) return set.status();
        const std::string set_path = Path(parent, "RegionSet");
        for (rapidjson::SizeType i = 0; i < (*set)->Size(); ++i) {
          const Value& item = (**set)[i];
          const std::string path = Index(set_path, i);
          if (!item.IsObject()) return Mismatch(path, "an object", item);
          Region r;
          BPS_RETURN_IF_ERROR(GetChecked(item, path, "Region", Presence::kRequired, &r.region,
                                         bounds::CheckRegion));
          BPS_RETURN_IF_ERROR(GetText(item, path, "RegionName", &r.region_name));
          BPS_RETURN_IF_ERROR(GetChecked(item, path, "RegionState", Presence::kNullable,
                                         &r.region_state, bounds::CheckEnumWord));
          BPS_RETURN_IF_ERROR(GetBool(item, path, "IsChinaMainland", &r.is_china_mainland));
          out.regions.push_back(std::move(r));
        }
        return absl::OkStatus();
      });
}

absl::StatusOr<DeleteBlueprintsResponse> DecodeDeleteBlueprints(std::string_view body) {
  // The envelope (RequestId, or Error) is the whole answer.
  return Decode<DeleteBlueprintsResponse>(
      "DeleteBlueprints", body,
      [](const Value&, DeleteBlueprintsResponse&) { return absl::OkStatus(); });
}

#undef BPS_RETURN_IF_ERROR

}  // namespace blueprintsync::tencent::json
