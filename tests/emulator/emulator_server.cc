#include "tests/emulator/emulator_server.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace blueprintsync::emulator {
namespace {

// Room for slow (latency-injected) calls without starving the others.
constexpr size_t kServerThreads = 32;

void JsonReply(httplib::Response& res, int status, std::string body) {
  res.status = status;
  res.set_content(std::move(body), "application/json");
}

void AdminReply(httplib::Response& res, const absl::Status& st, std::string ok_body) {
  if (st.ok()) {
    JsonReply(res, 200, std::move(ok_body));
  } else {
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    w.StartObject();
    w.Key("error");
    const std::string msg(st.message());
    w.String(msg.c_str());
    w.EndObject();
    JsonReply(res, 400, std::string(buf.GetString(), buf.GetSize()));
  }
}

}  // namespace

EmulatorServer::EmulatorServer(LighthouseEmulator* emulator)
    : emulator_(emulator), server_(std::make_unique<httplib::Server>()) {
  server_->new_task_queue = [] { return new httplib::ThreadPool(kServerThreads); };
  InstallRoutes();
}

EmulatorServer::~EmulatorServer() { Stop(); }

absl::StatusOr<int> EmulatorServer::Start(const std::string& host, int port) {
  int bound = port;
  if (port == 0) {
    bound = server_->bind_to_any_port(host);
    if (bound < 0) return absl::UnavailableError(absl::StrCat("cannot bind ", host, ":0"));
  } else if (!server_->bind_to_port(host, port)) {
    return absl::UnavailableError(absl::StrCat("cannot bind ", host, ":", port));
  }
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    listen_returned_ = true;
  });
  // stop() is a no-op until the accept loop runs, so make Start() return only then.
  while (!server_->is_running() && !listen_returned_)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (listen_returned_) return absl::UnavailableError("the HTTP listener stopped at once");
  return bound;
}

void EmulatorServer::Stop() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

void EmulatorServer::InstallRoutes() {
  LighthouseEmulator* const emu = emulator_;

  server_->Post("/", [emu](const httplib::Request& req, httplib::Response& res) {
    ApiRequest api;
    api.headers.reserve(req.headers.size());
    for (const auto& [k, v] : req.headers) api.headers.emplace_back(k, v);
    api.body = req.body;
    ApiResponse out = emu->HandleApi(api);
    res.status = out.http_status;
    if (!out.drop_connection) {
      res.set_content(std::move(out.body), out.content_type.c_str());
      return;
    }
    // Announce the full length, send half, then fail the provider: httplib
    // closes the socket and the client sees a truncated response.
    const size_t total = out.body.size();
    auto body = std::make_shared<std::string>(std::move(out.body));
    res.set_content_provider(total, out.content_type,
                             [body](size_t offset, size_t /*length*/, httplib::DataSink& sink) {
                               if (offset == 0) sink.write(body->data(), body->size() / 2);
                               return false;
                             });
  });

  // The instance metadata service of a CVM (role discovery, role credentials).
  server_->Get("/latest/meta-data/cam/security-credentials/",
               [emu](const httplib::Request&, httplib::Response& res) {
                 ApiResponse out = emu->sts().HandleMetadata("");
                 res.status = out.http_status;
                 res.set_content(std::move(out.body), out.content_type.c_str());
               });
  server_->Get(R"(/latest/meta-data/cam/security-credentials/([^/]+))",
               [emu](const httplib::Request& req, httplib::Response& res) {
                 ApiResponse out = emu->sts().HandleMetadata(req.matches[1].str());
                 res.status = out.http_status;
                 res.set_content(std::move(out.body), out.content_type.c_str());
               });
  server_->Get("/_emulator/sts", [emu](const httplib::Request&, httplib::Response& res) {
    JsonReply(res, 200, emu->sts().StsConfigJson());
  });
  server_->Post("/_emulator/sts", [emu](const httplib::Request& req, httplib::Response& res) {
    absl::Status st = emu->sts().ConfigureSts(req.body);
    AdminReply(res, st, st.ok() ? emu->sts().StsConfigJson() : "");
  });
  server_->Get("/_emulator/metadata", [emu](const httplib::Request&, httplib::Response& res) {
    JsonReply(res, 200, emu->sts().MetadataConfigJson());
  });
  server_->Post("/_emulator/metadata", [emu](const httplib::Request& req, httplib::Response& res) {
    absl::Status st = emu->sts().ConfigureMetadata(req.body);
    AdminReply(res, st, st.ok() ? emu->sts().MetadataConfigJson() : "");
  });
  server_->Get("/_emulator/stats", [emu](const httplib::Request&, httplib::Response& res) {
    JsonReply(res, 200, emu->StatsJson());
  });
  server_->Post("/_emulator/reset-stats", [emu](const httplib::Request&, httplib::Response& res) {
    emu->ResetStats();
    JsonReply(res, 200, emu->StatsJson());
  });
  server_->Get("/_emulator/regions", [emu](const httplib::Request&, httplib::Response& res) {
    JsonReply(res, 200, emu->regions().Json());
  });
  server_->Post("/_emulator/regions", [emu](const httplib::Request& req, httplib::Response& res) {
    absl::Status st = emu->regions().Replace(req.body);
    AdminReply(res, st, st.ok() ? emu->regions().Json() : "");
  });
  server_->Get("/_emulator/config", [emu](const httplib::Request&, httplib::Response& res) {
    JsonReply(res, 200, emu->ConfigJson());
  });
  server_->Post("/_emulator/config", [emu](const httplib::Request& req, httplib::Response& res) {
    absl::Status st = emu->UpdateConfig(req.body);
    AdminReply(res, st, st.ok() ? emu->ConfigJson() : "");
  });
  server_->Get("/_emulator/blueprints", [emu](const httplib::Request& req, httplib::Response& res) {
    std::optional<std::string> region;
    if (req.has_param("region")) region = req.get_param_value("region");
    JsonReply(res, 200, emu->BlueprintsJson(region));
  });
  server_->Post("/_emulator/blueprints",
                [emu](const httplib::Request& req, httplib::Response& res) {
                  absl::Status st = emu->PutBlueprints(req.body);
                  AdminReply(res, st, st.ok() ? emu->BlueprintsJson(std::nullopt) : "");
                });
  // A blueprint deleted behind the service's back (the console, another tool).
  server_->Delete(R"(/_emulator/blueprints/([^/]+)/([^/]+))", [emu](const httplib::Request& req,
                                                                    httplib::Response& res) {
    absl::Status st = emu->RemoveBlueprint(req.matches[1].str(), req.matches[2].str());
    AdminReply(res, st, "{\"ok\":true}");
    if (absl::IsNotFound(st)) res.status = 404;
  });
  // A new version of an image family (someone built a new image with the same name).
  server_->Post("/_emulator/family-versions",
                [emu](const httplib::Request& req, httplib::Response& res) {
                  absl::StatusOr<std::string> id = emu->AddFamilyVersion(req.body);
                  std::string body;
                  if (id.ok()) {
                    rapidjson::StringBuffer buf;
                    JsonWriter w(buf);
                    w.StartObject();
                    w.Key("BlueprintId");
                    w.String(id->c_str());
                    w.EndObject();
                    body.assign(buf.GetString(), buf.GetSize());
                  }
                  AdminReply(res, id.status(), std::move(body));
                });
  server_->Post("/_emulator/keys", [emu](const httplib::Request& req, httplib::Response& res) {
    AdminReply(res, emu->AddKeys(req.body), "{\"ok\":true}");
  });
  server_->Get("/_emulator/faults", [emu](const httplib::Request&, httplib::Response& res) {
    JsonReply(res, 200, emu->FaultsJson());
  });
  server_->Post("/_emulator/faults", [emu](const httplib::Request& req, httplib::Response& res) {
    absl::Status st = emu->SetFaults(req.body);
    AdminReply(res, st, st.ok() ? emu->FaultsJson() : "");
  });
}

}  // namespace blueprintsync::emulator
