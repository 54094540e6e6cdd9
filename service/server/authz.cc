#include "service/server/authz.h"

#include <grpc/grpc_security_constants.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "service/common/display.h"

namespace blueprintsync::server {
namespace {

constexpr size_t kMaxPolicyBytes = 1 << 20;
constexpr size_t kMaxEntries = 1000;
constexpr size_t kMaxEntryBytes = 1024;
constexpr size_t kMaxShownIdentities = 3;

std::vector<std::string> Values(const grpc::AuthContext& context, const char* property) {
  std::vector<std::string> out;
  for (const grpc::string_ref& v : context.FindPropertyValues(property)) {
    out.emplace_back(v.data(), v.size());
  }
  return out;
}

}  // namespace

Peer PeerFromAuthContext(const grpc::AuthContext* context) {
  Peer peer;
  if (context == nullptr || !context->IsPeerAuthenticated()) return peer;
  peer.authenticated = true;
  peer.dns_names = Values(*context, GRPC_PEER_DNS_PROPERTY_NAME);
  peer.uris = Values(*context, GRPC_PEER_URI_PROPERTY_NAME);
  std::vector<std::string> cn = Values(*context, GRPC_X509_CN_PROPERTY_NAME);
  if (!cn.empty()) peer.common_name = cn.front();
  return peer;
}

std::string DescribePeer(const Peer& peer) {
  if (!peer.authenticated) return "an unauthenticated caller";
  std::vector<std::string> ids;
  for (const std::string& u : peer.uris) ids.push_back(absl::StrCat("uri:", Shown(u)));
  for (const std::string& d : peer.dns_names) ids.push_back(absl::StrCat("dns:", Shown(d)));
  if (!peer.common_name.empty()) ids.push_back(absl::StrCat("cn:", Shown(peer.common_name)));
  if (ids.empty()) return "a client certificate without SAN or CN";
  const size_t more = ids.size() > kMaxShownIdentities ? ids.size() - kMaxShownIdentities : 0;
  ids.resize(ids.size() - more);
  std::string out = absl::StrJoin(ids, ", ");
  if (more > 0) absl::StrAppend(&out, " (+", more, " more)");
  return out;
}

std::string CallerIdentity(const Peer& peer) {
  if (!peer.authenticated) return "";
  if (!peer.uris.empty()) return absl::StrCat("uri:", peer.uris.front());
  if (!peer.dns_names.empty()) {
    return absl::StrCat("dns:", absl::AsciiStrToLower(peer.dns_names.front()));
  }
  if (!peer.common_name.empty()) return absl::StrCat("cn:", peer.common_name);
  return "";
}

absl::StatusOr<AuthzPolicy> AuthzPolicy::Parse(absl::string_view json, const std::string& source) {
  auto bad = [&source](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat("--authz-policy \"", Shown(source), "\": ", what));
  };
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) {
    return bad(absl::StrCat("not JSON (", rapidjson::GetParseError_En(doc.GetParseError()),
                            " at byte ", doc.GetErrorOffset(), ")"));
  }
  if (!doc.IsObject()) return bad("must be a JSON object {\"writers\": [...], \"readers\": [...]}");
  AuthzPolicy policy;
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    const std::string key(it->name.GetString(), it->name.GetStringLength());
    std::vector<Entry>* list = key == "writers"   ? &policy.writers_
                               : key == "readers" ? &policy.readers_
                                                  : nullptr;
    if (list == nullptr) {
      return bad(absl::StrCat("unknown key \"", Shown(key), "\" (expected writers, readers)"));
    }
    if (!it->value.IsArray()) return bad(absl::StrCat(key, " must be a list of strings"));
    if (it->value.Size() > kMaxEntries) {
      return bad(absl::StrCat(key, " has more than ", kMaxEntries, " entries"));
    }
    for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
      const auto& v = it->value[i];
      const std::string field = absl::StrCat(key, "[", i, "]");
      if (!v.IsString()) return bad(absl::StrCat(field, " must be a string"));
      const std::string text(v.GetString(), v.GetStringLength());
      if (text.size() > kMaxEntryBytes) {
        return bad(absl::StrCat(field, " is longer than ", kMaxEntryBytes, " bytes"));
      }
      Entry entry{Entry::Kind::kAny, ""};
      if (text == "*") {
        entry.kind = Entry::Kind::kAny;
      } else if (absl::StartsWith(text, "dns:")) {
        entry = {Entry::Kind::kDns, absl::AsciiStrToLower(text.substr(4))};
      } else if (absl::StartsWith(text, "uri:")) {
        entry = {Entry::Kind::kUri, text.substr(4)};
      } else if (absl::StartsWith(text, "cn:")) {
        entry = {Entry::Kind::kCommonName, text.substr(3)};
      } else {
        return bad(absl::StrCat(field, " \"", Shown(text),
                                "\" is not \"dns:NAME\", \"uri:URI\", \"cn:NAME\" or \"*\""));
      }
      if (entry.kind != Entry::Kind::kAny && entry.value.empty()) {
        return bad(absl::StrCat(field, " \"", Shown(text), "\" names nobody"));
      }
      list->push_back(std::move(entry));
    }
  }
  if (policy.writers_.empty() && policy.readers_.empty()) {
    return bad("allows nobody: list at least one writer or reader");
  }
  return policy;
}

absl::StatusOr<AuthzPolicy> AuthzPolicy::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("--authz-policy \"", Shown(path), "\": cannot read: ", std::strerror(errno)));
  }
  std::string data(kMaxPolicyBytes + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > kMaxPolicyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("--authz-policy \"", Shown(path),
                                                   "\": larger than ", kMaxPolicyBytes, " bytes"));
  }
  return Parse(data, path);
}

bool AuthzPolicy::Matches(const std::vector<Entry>& list, const Peer& peer) {
  for (const Entry& e : list) {
    switch (e.kind) {
      case Entry::Kind::kAny:
        return true;
      case Entry::Kind::kDns:
        for (const std::string& d : peer.dns_names) {
          if (absl::EqualsIgnoreCase(d, e.value)) return true;
        }
        break;
      case Entry::Kind::kUri:
        for (const std::string& u : peer.uris) {
          if (u == e.value) return true;
        }
        break;
      case Entry::Kind::kCommonName:
        if (!peer.common_name.empty() && peer.common_name == e.value) return true;
        break;
    }
  }
  return false;
}

absl::Status AuthzPolicy::Check(absl::string_view method, Access access, const Peer& peer) const {
  if (!peer.authenticated) {
    return absl::UnauthenticatedError(
        absl::StrCat(method, " needs a verified client certificate (--authz-policy is set)"));
  }
  if (Matches(writers_, peer)) return absl::OkStatus();
  if (access == Access::kRead && Matches(readers_, peer)) return absl::OkStatus();
  const bool reader = access == Access::kWrite && Matches(readers_, peer);
  return absl::PermissionDeniedError(
      absl::StrCat("caller ", DescribePeer(peer), " may not call ", method, ": ",
                   access == Access::kWrite ? "only writers may" : "only readers and writers may",
                   reader ? " (it is a reader)" : "", "; see --authz-policy"));
}

absl::StatusOr<std::unique_ptr<AuthzPolicy>> AuthzPolicyFromFlags(const Flags& flags,
                                                                  bool mutual_tls) {
  const std::string path = flags.String("authz-policy");
  if (path.empty()) return nullptr;
  if (!mutual_tls) {
    return absl::InvalidArgumentError(
        "--authz-policy needs --tls-client-ca (with --tls-cert and --tls-key): callers are "
        "identified by their client certificates");
  }
  auto policy = AuthzPolicy::Load(path);
  if (!policy.ok()) return policy.status();
  return std::make_unique<AuthzPolicy>(*std::move(policy));
}

}  // namespace blueprintsync::server
