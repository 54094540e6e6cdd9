#include "service/tencent/lighthouse_json.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"

namespace blueprintsync::tencent::json {
namespace {

using rapidjson::Value;

// Iterative: nesting depth costs heap, not stack, so a hostile body of
// 100000 '[' cannot overflow the stack. Strings must be valid UTF-8.
constexpr unsigned kParseFlags = rapidjson::kParseDefaultFlags | rapidjson::kParseIterativeFlag |
                                 rapidjson::kParseValidateEncodingFlag;

constexpr char kParseJsonError[] = "ClientError.ParseJsonError";

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteString(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void WriteStringArray(Writer& w, const std::vector<std::string>& values) {
  w.StartArray();
  for (const std::string& v : values) WriteString(w, v);
  w.EndArray();
}

const char* TypeName(const Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "a boolean";
    case rapidjson::kObjectType:
      return "an object";
    case rapidjson::kArrayType:
      return "an array";
    case rapidjson::kStringType:
      return "a string";
    case rapidjson::kNumberType:
      return "a number";
  }
  return "an unknown type";
}

// The field checks below return plain InvalidArgument statuses naming the
// JSON path; Decode* turns them into one kMalformedResponse ApiError.
absl::Status Mismatch(absl::string_view path, absl::string_view expected, const Value& got) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": expected ", expected, ", got ", TypeName(got)));
}

absl::Status Missing(absl::string_view path) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": required field missing"));
}

std::string Path(absl::string_view parent, absl::string_view key) {
  return absl::StrCat(parent, ".", key);
}

std::string Index(absl::string_view parent, rapidjson::SizeType i) {
  return absl::StrCat(parent, "[", i, "]");
}

// Required fields must be present and non-null; nullable ones may be absent
// or null (Tencent sends null for unset optional fields) but, when present,
// must still have the documented type.
enum class Presence { kRequired, kNullable };

const Value* Find(const Value& object, const char* key) {
  auto it = object.FindMember(key);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

absl::Status GetString(const Value& object, absl::string_view parent, const char* key,
                       Presence presence, std::string* out) {
  const Value* v = Find(object, key);
  if (v == nullptr || v->IsNull()) {
    if (presence == Presence::kNullable) return absl::OkStatus();
    return v == nullptr ? Missing(Path(parent, key)) : Mismatch(Path(parent, key), "a string", *v);
  }
  if (!v->IsString()) return Mismatch(Path(parent, key), "a string", *v);
  out->assign(v->GetString(), v->GetStringLength());
  return absl::OkStatus();
}

absl::Status GetNonNegativeInt64(const Value& object, absl::string_view parent, const char* key,
                                 Presence presence, int64_t* out) {
  const Value* v = Find(object, key);
  if (v == nullptr || v->IsNull()) {
    if (presence == Presence::kNullable) return absl::OkStatus();
    return v == nullptr ? Missing(Path(parent, key))
                        : Mismatch(Path(parent, key), "an integer", *v);
  }
  // IsInt64 is false for fractions, exponent forms and values beyond int64.
  if (!v->IsInt64()) {
    if (v->IsNumber()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Path(parent, key), ": not an integer in the int64 range"));
    }
    return Mismatch(Path(parent, key), "an integer", *v);
  }
  if (v->GetInt64() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(Path(parent, key), ": negative value"));
  }
  *out = v->GetInt64();
  return absl::OkStatus();
}

absl::Status GetBool(const Value& object, absl::string_view parent, const char* key, bool* out) {
  const Value* v = Find(object, key);
  if (v == nullptr) return Missing(Path(parent, key));
  if (!v->IsBool()) return Mismatch(Path(parent, key), "a boolean", *v);
  *out = v->GetBool();
  return absl::OkStatus();
}

absl::StatusOr<const Value*> GetArray(const Value& object, absl::string_view parent,
                                      const char* key) {
  const Value* v = Find(object, key);
  if (v == nullptr) return Missing(Path(parent, key));
  if (!v->IsArray()) return Mismatch(Path(parent, key), "an array", *v);
  return v;
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

// The outcome of reading the common envelope.
struct Envelope {
  // Set when the body is a well-formed Tencent error envelope.
  std::optional<ApiError> api_error;
  // The success "Response" object (valid while the document lives).
  const Value* response = nullptr;
  std::string request_id;
};

// Parses `body` and checks the parts every answer shares. A non-OK status is
// a plain InvalidArgument describing what is malformed.
absl::StatusOr<Envelope> ReadEnvelope(std::string_view action, std::string_view body,
                                      rapidjson::Document& doc) {
  if (body.empty()) return absl::InvalidArgumentError("empty body");
  // RapidJSON's memory stream treats NUL as end of input, which would hide
  // whatever follows it; raw NUL is never valid JSON anyway.
  if (body.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("body contains a NUL byte");
  }
  doc.Parse<kParseFlags>(body.data(), body.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON at offset ", doc.GetErrorOffset(), ": ",
                     rapidjson::GetParseError_En(doc.GetParseError())));
  }
  if (!doc.IsObject()) return Mismatch("(top level)", "an object", doc);
  const Value* response = Find(doc, "Response");
  if (response == nullptr) return Missing("Response");
  if (!response->IsObject()) return Mismatch("Response", "an object", *response);

  Envelope envelope;
  if (const Value* error = Find(*response, "Error"); error != nullptr) {
    if (!error->IsObject()) return Mismatch("Response.Error", "an object", *error);
    ApiError api;
    api.kind = ErrorKind::kApi;
    api.action = std::string(action);
    if (absl::Status s =
            GetString(*error, "Response.Error", "Code", Presence::kRequired, &api.code);
        !s.ok()) {
      return s;
    }
    if (api.code.empty()) return absl::InvalidArgumentError("Response.Error.Code: empty");
    if (absl::Status s =
            GetString(*error, "Response.Error", "Message", Presence::kNullable, &api.message);
        !s.ok()) {
      return s;
    }
    if (absl::Status s =
            GetString(*response, "Response", "RequestId", Presence::kNullable, &api.request_id);
        !s.ok()) {
      return s;
    }
    envelope.api_error = std::move(api);
    return envelope;
  }
  if (absl::Status s =
          GetString(*response, "Response", "RequestId", Presence::kRequired, &envelope.request_id);
      !s.ok()) {
    return s;
  }
  if (envelope.request_id.empty()) return absl::InvalidArgumentError("Response.RequestId: empty");
  envelope.response = response;
  return envelope;
}

// Shared driver: envelope, then the action-specific body via `decode`.
template <typename T, typename DecodeFn>
absl::StatusOr<T> Decode(std::string_view action, std::string_view body, DecodeFn decode) {
  rapidjson::Document doc;
  absl::StatusOr<Envelope> envelope = ReadEnvelope(action, body, doc);
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

absl::Status DecodeBlueprint(const Value& v, const std::string& path, Blueprint& out) {
  if (!v.IsObject()) return Mismatch(path, "an object", v);
  BPS_RETURN_IF_ERROR(GetString(v, path, "BlueprintId", Presence::kRequired, &out.blueprint_id));
  if (out.blueprint_id.empty()) return absl::InvalidArgumentError(path + ".BlueprintId: empty");
  BPS_RETURN_IF_ERROR(
      GetString(v, path, "BlueprintState", Presence::kRequired, &out.blueprint_state));
  BPS_RETURN_IF_ERROR(
      GetString(v, path, "BlueprintName", Presence::kNullable, &out.blueprint_name));
  BPS_RETURN_IF_ERROR(
      GetString(v, path, "BlueprintType", Presence::kNullable, &out.blueprint_type));
  BPS_RETURN_IF_ERROR(GetString(v, path, "PlatformType", Presence::kNullable, &out.platform_type));
  BPS_RETURN_IF_ERROR(GetString(v, path, "OsName", Presence::kNullable, &out.os_name));
  BPS_RETURN_IF_ERROR(GetString(v, path, "Description", Presence::kNullable, &out.description));
  BPS_RETURN_IF_ERROR(GetString(v, path, "CreatedTime", Presence::kNullable, &out.created_time));
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

absl::StatusOr<SyncBlueprintResponse> DecodeSyncBlueprint(std::string_view body) {
  return Decode<SyncBlueprintResponse>(
      "SyncBlueprint", body, [](const Value& response, SyncBlueprintResponse& out) {
        const std::string parent = "Response";
        absl::StatusOr<const Value*> set =
            GetArray(response, parent, "DestinationRegionBlueprintSet");
        if (!set.ok()) return set.status();
        const std::string set_path = Path(parent, "DestinationRegionBlueprintSet");
        for (rapidjson::SizeType i = 0; i < (*set)->Size(); ++i) {
          const Value& item = (**set)[i];
          const std::string path = Index(set_path, i);
          if (!item.IsObject()) return Mismatch(path, "an object", item);
          DestinationRegionBlueprint d;
          BPS_RETURN_IF_ERROR(GetString(item, path, "Region", Presence::kRequired, &d.region));
          BPS_RETURN_IF_ERROR(
              GetString(item, path, "BlueprintId", Presence::kRequired, &d.blueprint_id));
          if (d.region.empty() || d.blueprint_id.empty()) {
            return absl::InvalidArgumentError(path + ": empty Region or BlueprintId");
          }
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
        absl::StatusOr<const Value*> set = GetArray(response, parent, "BlueprintSet");
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
        absl::StatusOr<const Value*> set = GetArray(response, parent, "RegionSet");
        if (!set.ok()) return set.status();
        const std::string set_path = Path(parent, "RegionSet");
        for (rapidjson::SizeType i = 0; i < (*set)->Size(); ++i) {
          const Value& item = (**set)[i];
          const std::string path = Index(set_path, i);
          if (!item.IsObject()) return Mismatch(path, "an object", item);
          Region r;
          BPS_RETURN_IF_ERROR(GetString(item, path, "Region", Presence::kRequired, &r.region));
          if (r.region.empty()) return absl::InvalidArgumentError(path + ".Region: empty");
          BPS_RETURN_IF_ERROR(
              GetString(item, path, "RegionName", Presence::kNullable, &r.region_name));
          BPS_RETURN_IF_ERROR(
              GetString(item, path, "RegionState", Presence::kNullable, &r.region_state));
          BPS_RETURN_IF_ERROR(GetBool(item, path, "IsChinaMainland", &r.is_china_mainland));
          out.regions.push_back(std::move(r));
        }
        return absl::OkStatus();
      });
}

std::optional<ApiError> DecodeErrorEnvelope(std::string_view action, std::string_view body) {
  rapidjson::Document doc;
  absl::StatusOr<Envelope> envelope = ReadEnvelope(action, body, doc);
  if (!envelope.ok()) return std::nullopt;
  return envelope->api_error;
}

#undef BPS_RETURN_IF_ERROR

}  // namespace blueprintsync::tencent::json
