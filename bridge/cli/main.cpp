// sync-bridge: serves the JSON WebSocket sync protocol to browsers and
// legacy clients, translating it to sync.v1 gRPC streams to syncd.

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <boost/program_options.hpp>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "api/process.h"
#include "http/listener.h"
#include "observe/log_format.h"
#include "ws/context.h"

namespace po = boost::program_options;
namespace net = boost::asio;

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "0.0.0.0:" + env_or("PORT", "8080");
  std::string upstream = env_or("SYNC_UPSTREAM", "127.0.0.1:50051");
  int threads = 2;
  int idle = 60;
  int header_timeout = 30;
  int upstream_keepalive = 10;
  int upstream_keepalive_timeout = 5;
  bridge::BridgeLimits limits;
  std::string log_level;
  std::string log_format;
  std::string token_file = env_or("SYNC_BRIDGE_TOKEN_FILE", "");
  po::options_description flags(
      "sync-bridge - the JSON WebSocket sync protocol, over sync.v1 gRPC\n\n"
      "Usage: sync-bridge [flags]\n\n"
      "Endpoints: ws://HOST:PORT/sync (and /) ?channel=NAME&since=VERSION|head&token=JWT,\n"
      "GET /healthz, /readyz, /stats, /. The open-file limit is raised to the hard limit.\n\nFlags");
  flags.add_options()("help,h", "show this help")(
      "listen", po::value<std::string>(&listen)->default_value(listen, "0.0.0.0:$PORT or 0.0.0.0:8080"),
      "HOST:PORT for WebSocket (/sync, /crdt), Socket.IO (/socket.io/), the demo page (/) and HTTP: "
      "GET /health, /healthz, /readyz, /stats and /metrics (Prometheus)")(
      "upstream", po::value<std::string>(&upstream)->default_value(upstream, "$SYNC_UPSTREAM or 127.0.0.1:50051"),
      "syncd's gRPC address")(
      "upstream-keepalive", po::value<int>(&upstream_keepalive)->default_value(upstream_keepalive),
      "seconds between pings to syncd; a syncd that stops answering (a cut or hung connection)\n"
      "is declared gone after a further --upstream-keepalive-timeout, and its sockets close 1013")(
      "upstream-keepalive-timeout", po::value<int>(&upstream_keepalive_timeout)->default_value(upstream_keepalive_timeout),
      "seconds to wait for the answer to a ping to syncd")(
      "threads", po::value<int>(&threads)->default_value(threads), "I/O threads")(
      "idle-timeout", po::value<int>(&idle)->default_value(idle),
      "seconds without any frame (ping and pong included) before a socket is closed")(
      "max-frame-bytes", po::value<std::size_t>(&limits.max_frame_bytes)->default_value(limits.max_frame_bytes),
      "largest client frame; a larger one closes the socket with 1009")(
      "max-frame-depth", po::value<std::size_t>(&limits.parse.max_depth)->default_value(limits.parse.max_depth),
      "deepest nesting of arrays and objects in a client frame; deeper: error invalid_json")(
      "max-frame-values", po::value<std::size_t>(&limits.parse.max_values)->default_value(limits.parse.max_values),
      "most JSON values in a client frame; more: error too_large")(
      "max-patch-bytes", po::value<std::size_t>(&limits.parse.max_patch_bytes)->default_value(limits.parse.max_patch_bytes),
      "syncd's --max-patch-bytes: a larger patch (encoded) is rejected too_large by the bridge, and\n"
      "never sent to syncd. 0: leave it to syncd")(
      "max-read-rate", po::value<std::size_t>(&limits.read_bytes_per_second)->default_value(limits.read_bytes_per_second),
      ("bytes/s of frames read from one socket (each frame counts at least " + std::to_string(bridge::kMinFrameCost) +
       "); a faster client is read more slowly, so none can hold an I/O thread. 0: no limit")
          .c_str())(
      "max-sockets-per-address", po::value<std::size_t>(&limits.sockets_per_address)->default_value(limits.sockets_per_address),
      "open WebSockets from one IP address; more: error rate_limited, close 1008. 0: no limit")(
      "max-sockets-per-subject", po::value<std::size_t>(&limits.sockets_per_subject)->default_value(limits.sockets_per_subject),
      "open WebSockets of one token subject (counted once syncd accepts the token); more: error\n"
      "rate_limited, close 1008. 0: no limit")(
      "header-timeout", po::value<int>(&header_timeout)->default_value(header_timeout),
      "seconds a client has to send a whole HTTP request head (slow senders are cut off)")(
      "max-header-bytes", po::value<std::size_t>(&limits.max_header_bytes)->default_value(limits.max_header_bytes),
      "largest HTTP request head (request line and headers); larger: 431 and close")(
      "queue-limit", po::value<std::size_t>(&limits.queue_messages)->default_value(limits.queue_messages),
      "frames queued per socket; a client further behind is served from the log once it catches up")(
      "upstream-token-file", po::value<std::string>(&token_file)->default_value(token_file, "$SYNC_BRIDGE_TOKEN_FILE"),
      "the bridge's own JWT, when syncd has authentication on: it needs read access to every channel\n"
      "clients may open (e.g. `syncd token --sub sync-bridge --read '*'`). Re-read whenever a\n"
      "channel's feed starts, so it can be replaced in place. Clients' tokens are passed through\n"
      "and checked by syncd on every call made for them.")(
      "log-level", po::value<std::string>(&log_level)->default_value("info"), "debug, info, warn or error")(
      "log-format", po::value<std::string>(&log_format)->default_value(env_or("SYNC_LOG_FORMAT", "text")),
      "text (for people) or json (one object per line, for log shippers) [env SYNC_LOG_FORMAT]");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, flags), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "sync-bridge: " << e.what() << "\n\n" << flags << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << flags << "\n";
    return 0;
  }
  if (upstream_keepalive < 1 || upstream_keepalive > 86400 || upstream_keepalive_timeout < 1 ||
      upstream_keepalive_timeout > 3600) {
    std::cerr << "sync-bridge: --upstream-keepalive must be 1-86400 seconds, --upstream-keepalive-timeout 1-3600\n";
    return 2;
  }
  if (threads < 1 || idle < 1 || header_timeout < 1 || limits.max_frame_bytes < 1024 || limits.queue_messages < 2 ||
      limits.parse.max_depth < 4 || limits.parse.max_depth > 1000 || limits.parse.max_values < 16 ||
      limits.max_header_bytes < 1024) {
    std::cerr << "sync-bridge: --threads, --idle-timeout and --header-timeout must be >= 1, --max-frame-bytes >= 1024,\n"
                 "--queue-limit >= 2, --max-frame-depth 4..1000, --max-frame-values >= 16, --max-header-bytes >= 1024\n";
    return 2;
  }
  limits.idle_timeout = std::chrono::seconds(idle);
  limits.header_timeout = std::chrono::seconds(header_timeout);
  spdlog::set_level(spdlog::level::from_str(log_level));
  if (std::string error; !syncd::observe::set_log_format(log_format, &error)) {
    std::cerr << "sync-bridge: " << error << "\n";
    return 2;
  }

  const std::size_t colon = listen.rfind(':');
  boost::system::error_code ec;
  const auto address = net::ip::make_address(colon == std::string::npos ? "" : listen.substr(0, colon), ec);
  int port = -1;
  if (!ec && colon != std::string::npos) port = std::atoi(listen.c_str() + colon + 1);
  if (ec || port < 0 || port > 65535) {
    std::cerr << "sync-bridge: --listen wants IP:PORT, e.g. 0.0.0.0:8080 (got \"" << listen << "\")\n";
    return 2;
  }

  sync_runtime::raise_open_file_limit();
  sync_runtime::skip_mutex_deadlock_checks();
  bridge::BridgeContext ctx(limits);
  grpc::ChannelArguments args;
  // Clients resume with `since` and resend patches themselves (duplicates
  // are answered `ignored`); gRPC's own retries would only add state.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // A syncd cut off without a FIN or RST would otherwise hold every feed and
  // call open until TCP gives up (minutes to hours). syncd accepts pings
  // as often as once a second, with or without calls.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, upstream_keepalive * 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, upstream_keepalive_timeout * 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  ctx.channel = grpc::CreateCustomChannel(upstream, grpc::InsecureChannelCredentials(), args);
  ctx.stub = api::Sync::NewStub(ctx.channel);
  ctx.feeds = std::make_unique<bridge::upstream::Feeds>(ctx.stub, token_file);
  ctx.presence = std::make_unique<bridge::presence::PresenceLink>(
      ctx.stub, [feeds = ctx.feeds.get()] { return feeds->authorization(); });
  ctx.list_at_open = token_file.empty();

  net::io_context ioc(threads);
  ctx.socketio = std::make_unique<bridge::socketio::Registry>(ioc);
  std::shared_ptr<bridge::Listener> listener;
  try {
    listener = std::make_shared<bridge::Listener>(ioc, net::ip::tcp::endpoint(address, static_cast<unsigned short>(port)), ctx);
  } catch (const boost::system::system_error& e) {
    spdlog::critical("cannot listen on {}: {}", listen, e.what());
    return 1;
  }
  listener->run();
  spdlog::info("sync-bridge listening on port {} (ws /sync /crdt, Socket.IO /socket.io/, GET /health /healthz /readyz /stats /metrics), upstream syncd at {}",
               listener->port(), upstream);

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int sig) {
    spdlog::info("{}: closing sockets with 1001", sig == SIGINT ? "SIGINT" : "SIGTERM");
    ctx.stopping = true;
    listener->stop();
    ctx.sessions.close_all();
    ctx.socketio->close_all();
    // Sessions finish their close handshakes; stop once they have had a moment.
    auto timer = std::make_shared<net::steady_timer>(ioc, std::chrono::seconds(2));
    timer->async_wait([&ioc, timer](const boost::system::error_code&) { ioc.stop(); });
  });

  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  ctx.socketio.reset();  // while the io_context its sessions' strands run on exists
  spdlog::info("stopped");
  return 0;
}
