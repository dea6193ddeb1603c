#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "engine/head_listener.h"
#include "engine/reader_pool.h"
#include "grpc/health/v1/health.pb.h"
#include "observe/metrics.h"
#include "server/context.h"
#include "server/http_health.h"
#include "server/presence_call.h"
#include "server/sync_service.h"
#include "store/conninfo.h"
#include "store/db_probe.h"
#include "store/pg_change_log.h"

namespace syncd::server {
namespace {

std::string random_instance_id() {
  std::random_device rd;
  std::uniform_int_distribution<std::uint64_t> dist;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(dist(rd)));
  return buf;
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  std::string instance = random_instance_id();
  std::atomic<bool> stopping{false};
  std::mutex health_mu;  // orders health updates from the probe and from start/shut_down
  // Before the engine, which asks it, so destroyed after it. Its thread
  // calls database_changed; ~Server stops it first.
  std::unique_ptr<store::DatabaseProbe> probe;
  engine::Hub hub;
  std::unique_ptr<engine::Committer> committer;
  std::unique_ptr<engine::ReaderPool> readers;
  std::unique_ptr<engine::Compactor> compactor;
  std::unique_ptr<engine::Presence> presence;
  PresenceCalls presence_calls;
  std::unique_ptr<engine::HeadListener> listener;
  std::unique_ptr<auth::Verifier> verifier;
  std::unique_ptr<auth::RateLimiter> limiter;
  std::unique_ptr<StreamCaps> caps;
  std::unique_ptr<Context> context;
  std::unique_ptr<SyncService> service;
  std::unique_ptr<grpc::Server> grpc_server;
  std::unique_ptr<HttpHealth> http;
  int grpc_port = 0;

  // Heartbeats and idle timeouts, once a second.
  std::mutex tick_mu;
  std::condition_variable tick_cv;
  bool tick_stop = false;
  std::thread ticker;

  // Readiness follows the database: gRPC health says NOT_SERVING while it
  // is unreachable, so that balancers send clients to another instance.
  void database_changed(bool ready, const std::string& reason) {
    if (ready) {
      spdlog::info("the database is reachable again; ready");
      if (listener) listener->reconnect();
    } else {
      spdlog::error("the database is unreachable ({}); not ready, patches are refused `unavailable` until it "
                    "answers again",
                    reason);
    }
    std::lock_guard lock(health_mu);
    if (grpc_server && !stopping) set_serving(ready);
  }

  void set_serving(bool serving) {
    grpc_server->GetHealthCheckService()->SetServingStatus(serving);
    grpc_server->GetHealthCheckService()->SetServingStatus("sync.v1.Sync", serving);
  }

  store::ChangeLogFactory factory() {
    return [url = options.database_url, id = instance] {
      return std::make_unique<store::PgChangeLog>(url, id);
    };
  }

  HttpHealth::Endpoints endpoints(std::function<bool()> database_ready) {
    HttpHealth::Endpoints e;
    e.database_ready = database_ready;
    e.connections = [this] { return static_cast<int>(hub.all().size()); };
    e.stats = [this] { return stats_json(); };
    e.metrics = [this, database_ready] {
      auto& m = observe::Metrics::get();
      const auto streams = hub.all();
      m.streams_behind.Set(static_cast<double>(
          std::count_if(streams.begin(), streams.end(), [](const auto& s) { return s->behind(); })));
      m.database_up.Set(database_ready() ? 1 : 0);
      m.presence_local.Set(static_cast<double>(presence->local_members()));
      m.presence_members.Set(static_cast<double>(presence->known_members()));
      return m.scrape();
    };
    return e;
  }

  // GET /stats: streams per channel on this instance and, for the first
  // kStatsChannels of those channels, who is connected (on every
  // instance) and how far behind each client is. The lists are read
  // together and waited for once, at most 2 s in all.
  std::string stats_json() {
    constexpr std::size_t kStatsChannels = 100;
    using List = absl::StatusOr<api::PresenceList>;
    nlohmann::ordered_json j;
    j["instance"] = instance;
    nlohmann::ordered_json channels = nlohmann::ordered_json::object();
    std::vector<std::pair<std::string, std::future<List>>> lists;
    int total = 0;
    for (const std::string& channel : hub.channels()) {
      const int n = hub.subscriber_count(channel);
      channels[channel] = {{"streams", n}};
      total += n;
      if (lists.size() == kStatsChannels) continue;
      auto promise = std::make_shared<std::promise<List>>();
      lists.emplace_back(channel, promise->get_future());
      presence->list(channel, [promise](List list) { promise->set_value(std::move(list)); });
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (auto& [channel, future] : lists) {
      if (future.wait_until(deadline) != std::future_status::ready) {
        channels[channel]["clients"] = "unavailable";
        continue;
      }
      const List list = future.get();
      if (!list.ok()) {
        channels[channel]["clients"] = "unavailable";
        continue;
      }
      nlohmann::ordered_json clients = nlohmann::ordered_json::array();
      for (const auto& m : list->members()) {
        clients.push_back({{"connectionId", m.connection_id()},
                           {"clientId", m.client_id()},
                           {"transport", m.transport()},
                           {"delivered", m.delivered_version()},
                           {"applied", m.applied_version()},
                           {"lag", m.lag()}});
      }
      channels[channel]["head"] = list->head_version();
      channels[channel]["clients"] = std::move(clients);
    }
    j["streams"] = total;
    j["channels"] = std::move(channels);
    return j.dump();
  }

  void run_ticker() {
    std::unique_lock lock(tick_mu);
    while (!tick_cv.wait_for(lock, std::chrono::seconds(1), [this] { return tick_stop; })) {
      lock.unlock();
      const auto now = std::chrono::steady_clock::now();
      for (const auto& s : hub.all()) s->tick(now);
      lock.lock();
    }
  }
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

Server::~Server() {
  if (impl_->probe) impl_->probe->stop();
  shut_down();
}

absl::Status Server::start() {
  Impl& d = *impl_;
  auto verifier = auth::Verifier::create(d.options.auth);
  if (!verifier.ok()) return verifier.status();
  store::set_response_timeout(d.options.database_dead_after);
  d.options.database_url = store::with_liveness_settings(d.options.database_url, d.options.database_dead_after);
  // Before the probe, whose callback renews its connection after an outage.
  d.listener = std::make_unique<engine::HeadListener>(d.options.database_url, d.instance, d.hub);
  d.probe = std::make_unique<store::DatabaseProbe>(
      d.options.database_url, d.options.database_probe_interval,
      [&d](bool ready, const std::string& reason) { d.database_changed(ready, reason); });
  auto database_ready = [probe = d.probe.get()] { return probe->ready(); };
  d.verifier = *std::move(verifier);
  d.limiter = std::make_unique<auth::RateLimiter>(d.options.rate);
  d.caps = std::make_unique<StreamCaps>(d.options.caps);
  d.committer = std::make_unique<engine::Committer>(d.factory(), d.hub, d.options.committer, database_ready);
  d.readers = std::make_unique<engine::ReaderPool>(d.factory(), d.options.read_threads);
  d.compactor = std::make_unique<engine::Compactor>(d.factory(), d.options.compaction);
  d.presence = std::make_unique<engine::Presence>(d.options.database_url, d.instance, d.options.presence);
  d.context = std::make_unique<Context>(Context{d.hub, *d.committer, *d.readers, *d.compactor, *d.presence, d.options.limits,
                                                d.options.stream, d.stopping, *d.verifier, *d.limiter,
                                                *d.caps, d.presence_calls});
  d.service = std::make_unique<SyncService>(*d.context);

  // Reflection describes services from the generated descriptor pool; the
  // built-in health service registers none, so link health.proto's.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  // Half-open client connections (a peer gone without a FIN) are found by
  // pings. Clients may ping too (the bridge does, to find a silent syncd),
  // as often as once a second, even with no call open.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(d.options.keepalive.count() * 1000));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(d.options.keepalive_timeout.count() * 1000));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  builder.AddListeningPort(d.options.grpc_listen, grpc::InsecureServerCredentials(), &d.grpc_port);
  builder.RegisterService(d.service.get());
  // At least room for a maximal patch plus framing; larger messages fail
  // with RESOURCE_EXHAUSTED before any handler sees them.
  builder.SetMaxReceiveMessageSize(static_cast<int>(
      std::min<std::size_t>(INT32_MAX, std::max(2 * d.options.limits.max_patch_bytes, d.options.max_message_bytes))));
  {
    std::lock_guard lock(d.health_mu);
    d.grpc_server = builder.BuildAndStart();
  }
  if (!d.grpc_server || d.grpc_port == 0) {
    std::lock_guard lock(d.health_mu);
    d.grpc_server.reset();
    return absl::UnavailableError("cannot listen for gRPC on " + d.options.grpc_listen +
                                  " (address in use or malformed?)");
  }
  auto http = HttpHealth::start(d.options.http_listen, d.stopping, d.endpoints(database_ready));
  if (!http.ok()) {
    d.grpc_server->Shutdown();
    std::lock_guard lock(d.health_mu);
    d.grpc_server.reset();
    return http.status();
  }
  d.http = *std::move(http);
  {
    std::lock_guard lock(d.health_mu);
    d.set_serving(d.probe->ready());
  }
  d.ticker = std::thread([&d] { d.run_ticker(); });
  return absl::OkStatus();
}

int Server::grpc_port() const { return impl_->grpc_port; }
int Server::http_port() const { return impl_->http ? impl_->http->port() : 0; }

void Server::shut_down() {
  Impl& d = *impl_;
  if (!d.grpc_server) return;
  {
    std::lock_guard lock(d.health_mu);
    if (d.stopping.exchange(true)) return;
    d.set_serving(false);
  }
  // Commit and answer everything already received; later patches are
  // refused with `unavailable`.
  d.committer->stop();
  for (const auto& s : d.hub.all()) s->shut_down();
  d.presence_calls.shut_down();
  d.grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  {
    std::lock_guard lock(d.tick_mu);
    d.tick_stop = true;
    d.tick_cv.notify_all();
  }
  if (d.ticker.joinable()) d.ticker.join();
  d.listener->stop();
  d.presence->stop();
  d.compactor->stop();
  d.readers->stop();
  d.probe->stop();
  d.http.reset();
}

}  // namespace syncd::server
