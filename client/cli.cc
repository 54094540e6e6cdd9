#include "client/cli.h"

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "blueprintsync/v1/blueprint_sync.pb.h"
#include "client/cli_options.h"
#include "client/exit_codes.h"
#include "client/job_format.h"
#include "client/printable.h"
#include "client/progress_view.h"
#include "client/rpc_error.h"

namespace blueprintsync::cli {
namespace {

namespace v1 = ::blueprintsync::v1;

class Runner {
 public:
  Runner(const CliOptions& options, const CliEnvironment& env)
      : options_(options), env_(env), out_(*env.out), err_(*env.err) {
    ConnectionOptions connection_options{options.server, options.timeout};
    connection_ =
        env.connect ? env.connect(connection_options) : MakeGrpcConnection(connection_options);
  }

  int Run() {
    switch (options_.command) {
      case Command::kSync:
        return Sync();
      case Command::kGet:
        return Get();
      case Command::kList:
        return List();
      case Command::kWatch:
        return Follow(options_.name, std::nullopt);
      case Command::kHelp:
        break;
    }
    return kExitUsage;
  }

 private:
  int RpcError(const absl::Status& status) {
    err_ << FormatRpcError(status, options_.server);
    err_.flush();
    return kExitRpcError;
  }

  // Prints a message as JSON (one line) or as text.
  int Print(const google::protobuf::Message& message, const std::string& text) {
    if (options_.output == OutputFormat::kJson) {
      auto json = ToJsonLine(message);
      if (!json.ok()) return RpcError(json.status());
      out_ << *json << "\n";
    } else {
      out_ << text;
    }
    out_.flush();
    return kExitOk;
  }

  int Sync() {
    v1::SyncBlueprintRequest request;
    request.set_source_region(options_.source_region);
    request.set_blueprint_id(options_.blueprint_id);
    for (const auto& r : options_.destinations) request.add_destination_regions(r);
    request.set_request_id(options_.request_id);
    request.set_validate_only(options_.validate_only);
    auto job = connection_->SyncBlueprint(request);
    if (!job.ok()) return RpcError(job.status());
    if (!options_.wait) {
      std::string text = FormatJobText(*job);
      if (options_.validate_only) {
        text = absl::StrCat("the request is valid (--validate-only: nothing was created)\n", text);
      }
      return Print(*job, text);
    }
    if (job->name().empty()) {
      return RpcError(absl::InternalError("the service accepted the job but returned no name"));
    }
    const std::string name = job->name();
    return Follow(name, *std::move(job));
  }

  int Get() {
    v1::GetSyncJobRequest request;
    request.set_name(options_.name);
    auto job = connection_->GetSyncJob(request);
    if (!job.ok()) return RpcError(job.status());
    return Print(*job, FormatJobText(*job));
  }

  int List() {
    v1::ListSyncJobsRequest request;
    request.set_page_size(options_.page_size);
    request.set_page_token(options_.page_token);
    request.set_filter(options_.filter);
    v1::ListSyncJobsResponse combined;
    std::set<std::string> tokens_seen;
    while (true) {
      auto page = connection_->ListSyncJobs(request);
      if (!page.ok()) return RpcError(page.status());
      if (!options_.all) {
        combined = *std::move(page);
        break;
      }
      for (auto& job : *page->mutable_sync_jobs()) *combined.add_sync_jobs() = std::move(job);
      const std::string& token = page->next_page_token();
      if (token.empty()) break;
      // A server bug must not turn --all into an endless loop.
      if (!tokens_seen.insert(token).second) {
        return RpcError(absl::InternalError(
            absl::StrCat("the service returned page token \"", Printable(token, 64),
                         "\" twice; stopping after ", combined.sync_jobs_size(), " jobs")));
      }
      request.set_page_token(token);
    }
    return Print(combined, FormatJobListText(combined));
  }

  // Shared by `watch` and `sync --wait`.
  int Follow(const std::string& name, std::optional<v1::SyncJob> known) {
    DisplayMode mode = DisplayMode::kLines;
    if (options_.output == OutputFormat::kJson) {
      mode = DisplayMode::kJson;
    } else if (env_.stdout_is_terminal) {
      mode = DisplayMode::kTerminal;
    }
    ProgressView view(mode, &out_, &err_, env_.clock);
    if (known.has_value()) view.OnJob(*known);
    absl::StatusOr<v1::SyncJob> result;
    {
      std::optional<ProgressTicker> ticker;
      if (mode == DisplayMode::kTerminal) ticker.emplace(&view, env_.redraw_interval);
      JobWatcher watcher(connection_.get(), env_.clock, env_.reconnect);
      result = watcher.Watch(
          name, std::move(known), [&view](const v1::SyncJob& job) { view.OnJob(job); },
          [&view](const std::string& note) { view.OnNote(note); });
    }
    view.Finish();
    if (!result.ok()) return RpcError(result.status());
    return result->state() == v1::SyncJob::SUCCEEDED ? kExitOk : kExitJobFailed;
  }

  const CliOptions& options_;
  const CliEnvironment& env_;
  std::ostream& out_;
  std::ostream& err_;
  std::unique_ptr<BlueprintSyncConnection> connection_;
};

}  // namespace

int RunCli(const std::vector<std::string>& args, const CliEnvironment& env) {
  auto options = ParseCommandLine(args, env.getenv);
  if (!options.ok()) {
    *env.err << "error: " << options.status().message() << "\n"
             << "run 'blueprint-sync --help' for usage\n";
    env.err->flush();
    return kExitUsage;
  }
  if (options->command == Command::kHelp) {
    *env.out << HelpText(options->help_topic);
    env.out->flush();
    return kExitOk;
  }
  return Runner(*options, env).Run();
}

}  // namespace blueprintsync::cli
