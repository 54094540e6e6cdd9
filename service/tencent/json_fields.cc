#include "service/tencent/json_fields.h"

#include "absl/strings/str_cat.h"

namespace blueprintsync::tencent::json {
namespace {

using rapidjson::Value;

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

}  // namespace

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

}  // namespace blueprintsync::tencent::json
