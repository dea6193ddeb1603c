#include <signal.h>
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <boost/program_options.hpp>
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "server/server.h"
#include "store/migrator.h"

namespace syncd::cli {

namespace po = boost::program_options;

namespace {

std::string default_grpc_listen() {
  const char* port = std::getenv("PORT");
  return std::string("0.0.0.0:") + (port != nullptr && *port != '\0' ? port : "50051");
}

}  // namespace

int serve(int argc, char** argv) {
  server::ServerOptions o;
  int idle_seconds = 60;
  int heartbeat_seconds = 15;
  std::string log_level;
  po::options_description flags(
      "Usage: syncd serve [flags]\n\nThe open-file limit is raised to the hard limit.\n\nFlags");
  flags.add_options()("help,h", "show this help")(
      "database-url", po::value<std::string>(&o.database_url)->default_value(database_url_env(), "$DATABASE_URL"),
      "PostgreSQL connection URL (the schema must be migrated: syncd migrate up)")(
      "grpc-listen", po::value<std::string>(&o.grpc_listen)->default_value(default_grpc_listen(), "0.0.0.0:$PORT or 0.0.0.0:50051"),
      "HOST:PORT for gRPC (sync.v1.Sync, health, reflection)")(
      "http-listen", po::value<std::string>(&o.http_listen)->default_value(o.http_listen),
      "HOST:PORT for HTTP (GET /healthz)")(
      "read-threads", po::value<int>(&o.read_threads)->default_value(o.read_threads),
      "threads (and database connections) reading the log")(
      "max-patch-bytes", po::value<std::size_t>(&o.limits.max_patch_bytes)->default_value(o.limits.max_patch_bytes),
      "largest patch accepted, encoded; larger ones are rejected `too_large`")(
      "max-data-depth", po::value<int>(&o.limits.max_data_depth)->default_value(o.limits.max_data_depth),
      "deepest nesting of objects and arrays in a patch's data")(
      "page-size", po::value<std::size_t>(&o.stream.page_patches)->default_value(o.stream.page_patches),
      "patches per history page (sync_state, GetChanges)")(
      "idle-timeout", po::value<int>(&idle_seconds)->default_value(idle_seconds),
      "seconds of client silence before a session is closed (0: never)")(
      "heartbeat-interval", po::value<int>(&heartbeat_seconds)->default_value(heartbeat_seconds),
      "seconds between the server's heartbeats on a session")(
      "max-batch", po::value<std::size_t>(&o.committer.max_batch)->default_value(o.committer.max_batch),
      "most patches committed in one transaction")(
      "log-level", po::value<std::string>(&log_level)->default_value("info"),
      "debug, info, warn or error");

  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, flags), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "syncd serve: " << e.what() << "\n\n" << flags << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << flags << "\n";
    return 0;
  }
  if (o.database_url.empty()) {
    std::cerr << "syncd serve: no database; pass --database-url or set DATABASE_URL\n";
    return 2;
  }
  if (o.read_threads < 1 || idle_seconds < 0 || heartbeat_seconds < 1 || o.stream.page_patches < 1 ||
      o.limits.max_patch_bytes < 256 || o.committer.max_batch < 1 || o.limits.max_data_depth < 1) {
    std::cerr << "syncd serve: --read-threads, --heartbeat-interval, --page-size and --max-batch "
                 "must be >= 1, --max-patch-bytes >= 256, --idle-timeout >= 0\n";
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(log_level));
  o.stream.idle_timeout = std::chrono::seconds(idle_seconds);
  o.stream.heartbeat_interval = std::chrono::seconds(heartbeat_seconds);

  // Refuse to serve on a schema that is behind this binary.
  auto migrations = store::bundled_migrations();
  if (!migrations.ok()) {
    spdlog::critical("{}", std::string(migrations.status().message()));
    return 1;
  }
  auto pending = store::Migrator(o.database_url, *std::move(migrations)).pending();
  if (!pending.ok()) {
    spdlog::critical("cannot reach the database: {}", std::string(pending.status().message()));
    return 1;
  }
  if (!pending->empty()) {
    spdlog::critical("the database schema is behind ({} migration(s) pending, first {}); run: "
                     "syncd migrate up --database-url URL",
                     pending->size(), pending->front());
    return 1;
  }

  // Signals are taken by sigwait below, on this thread only.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Every connection is a file descriptor: allow as many as the system lets us.
  if (rlimit l{}; getrlimit(RLIMIT_NOFILE, &l) == 0 && l.rlim_cur < l.rlim_max) {
    l.rlim_cur = l.rlim_max;
    setrlimit(RLIMIT_NOFILE, &l);
  }
  server::Server server(o);
  if (auto st = server.start(); !st.ok()) {
    spdlog::critical("{}", std::string(st.message()));
    return 1;
  }
  spdlog::info("syncd serving gRPC on port {} (sync.v1.Sync, health, reflection), HTTP /healthz on port {}",
               server.grpc_port(), server.http_port());

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("{}: finishing in-flight commits and closing streams", sig == SIGINT ? "SIGINT" : "SIGTERM");
  server.shut_down();
  spdlog::info("stopped");
  return 0;
}

}  // namespace syncd::cli
