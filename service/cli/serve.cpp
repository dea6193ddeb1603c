#include <signal.h>
#include <spdlog/spdlog.h>


#include <boost/program_options.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "api/process.h"
#include "observe/log_format.h"
#include "cli/commands.h"
#include "server/server.h"
#include "store/conninfo.h"
#include "store/migrator.h"

namespace syncd::cli {

namespace po = boost::program_options;

namespace {

std::string default_grpc_listen() {
  const char* port = std::getenv("PORT");
  return std::string("0.0.0.0:") + (port != nullptr && *port != '\0' ? port : "50051");
}

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// The whole file, or nullopt when it cannot be read.
std::optional<std::string> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

int serve(int argc, char** argv) {
  server::ServerOptions o;
  int idle_seconds = 60;
  int heartbeat_seconds = 15;
  std::string log_level;
  std::string log_format;
  std::string secret_file = env_or_empty("SYNC_JWT_SECRET_FILE");
  std::string public_key_file = env_or_empty("SYNC_JWT_PUBLIC_KEY_FILE");
  int leeway_seconds = 30;
  int dead_after_seconds = 10;
  int keepalive_seconds = 20;
  int keepalive_timeout_seconds = 10;
  std::int64_t compact_interval_seconds = 60;
  std::int64_t presence_ttl_seconds = 30;
  std::int64_t dedup_window_seconds = 7 * 86400;
  po::options_description flags(
      "Usage: syncd serve [flags]\n\nThe open-file limit is raised to the hard limit.\n\nFlags");
  flags.add_options()("help,h", "show this help")(
      "database-url", po::value<std::string>(&o.database_url)->default_value(database_url_env(), "$DATABASE_URL"),
      "PostgreSQL connection URL (the schema must be migrated: syncd migrate up)")(
      "grpc-listen", po::value<std::string>(&o.grpc_listen)->default_value(default_grpc_listen(), "0.0.0.0:$PORT or 0.0.0.0:50051"),
      "HOST:PORT for gRPC (sync.v1.Sync, health, reflection)")(
      "http-listen", po::value<std::string>(&o.http_listen)->default_value(o.http_listen),
      "HOST:PORT for HTTP: GET /healthz (the process is up), /readyz (the database is reachable too), "
      "/health, /stats (channels, clients and their lag) and /metrics (Prometheus)")(
      "read-threads", po::value<int>(&o.read_threads)->default_value(o.read_threads),
      "threads (and database connections) reading the log")(
      "commit-threads", po::value<int>(&o.committer.connections)->default_value(o.committer.connections),
      "threads (and database connections) committing patches; each channel always uses the same one")(
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
      "max-message-bytes", po::value<std::size_t>(&o.max_message_bytes)->default_value(o.max_message_bytes),
      "largest gRPC message received (at least twice --max-patch-bytes); larger ones fail RESOURCE_EXHAUSTED")(
      "max-data-values", po::value<std::size_t>(&o.limits.max_data_values)->default_value(o.limits.max_data_values),
      "most values (object members and array items, nested included) in a patch's data")(
      "jwt-secret-file", po::value<std::string>(&secret_file)->default_value(secret_file, "$SYNC_JWT_SECRET_FILE"),
      "turns authentication on: HS256/384/512 tokens signed with this file's bytes")(
      "jwt-public-key-file", po::value<std::string>(&public_key_file)->default_value(public_key_file, "$SYNC_JWT_PUBLIC_KEY_FILE"),
      "turns authentication on: RS256/384/512 or ES256/384/512 tokens, this PEM public key")(
      "jwt-issuer", po::value<std::string>(&o.auth.issuer)->default_value(env_or_empty("SYNC_JWT_ISSUER"), "$SYNC_JWT_ISSUER"),
      "when set, tokens must carry this `iss`")(
      "jwt-audience", po::value<std::string>(&o.auth.audience)->default_value(env_or_empty("SYNC_JWT_AUDIENCE"), "$SYNC_JWT_AUDIENCE"),
      "when set, tokens' `aud` must be or contain this")(
      "jwt-leeway", po::value<int>(&leeway_seconds)->default_value(leeway_seconds),
      "seconds of clock skew allowed on exp and nbf")(
      "rate-patches", po::value<double>(&o.rate.patches_per_second)->default_value(o.rate.patches_per_second),
      "patches/s per token subject; more are rejected `rate_limited` (0: no limit; nothing is limited with authentication off)")(
      "rate-bytes", po::value<double>(&o.rate.bytes_per_second)->default_value(o.rate.bytes_per_second),
      "patch bytes/s per subject, likewise (0: no limit)")(
      "max-sessions-per-subject", po::value<int>(&o.caps.sessions_per_subject)->default_value(o.caps.sessions_per_subject),
      "open Session streams per token subject; more end RESOURCE_EXHAUSTED (0: no limit)")(
      "max-watches-per-subject", po::value<int>(&o.caps.watches_per_subject)->default_value(o.caps.watches_per_subject),
      "open Watch streams per token subject, likewise (0: no limit)")(
      "max-streams-per-address", po::value<int>(&o.caps.streams_per_address)->default_value(o.caps.streams_per_address),
      "open Session and Watch streams per IP address of callers without a token subject "
      "(authentication off), likewise (0: no limit)")(
      "uncapped-subject", po::value<std::vector<std::string>>(&o.caps.uncapped_subjects)->composing(),
      "a token subject the stream caps do not apply to (repeatable): a sync-bridge's, which holds "
      "one Watch per channel for all its sockets")(
      "uncapped-address", po::value<std::vector<std::string>>(&o.caps.uncapped_addresses)->composing(),
      "an IP address --max-streams-per-address does not apply to (repeatable): a sync-bridge's, "
      "with authentication off")(
      "db-dead-after", po::value<int>(&dead_after_seconds)->default_value(dead_after_seconds),
      "seconds a silent database connection is trusted: connecting, waiting for an answer, TCP "
      "keepalives and unacknowledged data are bounded by it; then the connection is dropped, "
      "patches are refused `unavailable` and /readyz says 503 until it answers again")(
      "keepalive", po::value<int>(&keepalive_seconds)->default_value(keepalive_seconds),
      "seconds a client connection may be idle before syncd pings it")(
      "keepalive-timeout", po::value<int>(&keepalive_timeout_seconds)->default_value(keepalive_timeout_seconds),
      "seconds syncd waits for a ping's answer before dropping the connection and its calls")(
      "retain-versions", po::value<std::int64_t>(&o.compaction.defaults.versions)->default_value(0),
      "retention for channels that set none: keep at least the newest N patches in the log (0: no limit by count)")(
      "retain-seconds", po::value<std::int64_t>(&o.compaction.defaults.seconds)->default_value(0),
      "retention for channels that set none: keep patches younger than this (0: no limit by age); "
      "with both 0 the log keeps everything")(
      "presence-ttl", po::value<std::int64_t>(&presence_ttl_seconds)->default_value(presence_ttl_seconds),
      "seconds after which the connections of an instance that stopped answering (killed, cut off) "
      "leave every presence list; a clean close leaves at once")(
      "compact-interval", po::value<std::int64_t>(&compact_interval_seconds)->default_value(compact_interval_seconds),
      "seconds between retention passes (one instance compacts a channel at a time)")(
      "dedup-window", po::value<std::int64_t>(&dedup_window_seconds)->default_value(dedup_window_seconds),
      "seconds a compacted patch's id is kept, so a resend is still answered `ignored`")(
      "compact-batch", po::value<std::size_t>(&o.compaction.batch_rows)->default_value(o.compaction.batch_rows),
      "log rows removed per compaction transaction (commits wait for at most one)")(
      "log-level", po::value<std::string>(&log_level)->default_value("info"),
      "debug, info, warn or error")(
      "log-format", po::value<std::string>(&log_format)->default_value(env_or_empty("SYNC_LOG_FORMAT").empty() ? std::string("text") : env_or_empty("SYNC_LOG_FORMAT")),
      "text (for people) or json (one object per line, for log shippers) [env SYNC_LOG_FORMAT]");

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
  if (o.read_threads < 1 || o.committer.connections < 1 || idle_seconds < 0 || heartbeat_seconds < 1 ||
      o.stream.page_patches < 1 || o.limits.max_patch_bytes < 256 || o.committer.max_batch < 1 || o.limits.max_data_depth < 1) {
    std::cerr << "syncd serve: --read-threads, --commit-threads, --heartbeat-interval, --page-size and --max-batch "
                 "must be >= 1, --max-patch-bytes >= 256, --idle-timeout >= 0\n";
    return 2;
  }
  if (o.limits.max_data_values < 1 || leeway_seconds < 0 || o.rate.patches_per_second < 0 ||
      o.rate.bytes_per_second < 0 || o.caps.sessions_per_subject < 0 || o.caps.watches_per_subject < 0 ||
      o.caps.streams_per_address < 0) {
    std::cerr << "syncd serve: --max-data-values must be >= 1; --jwt-leeway, --rate-patches, --rate-bytes and "
                 "--max-{sessions,watches}-per-subject, --max-streams-per-address >= 0\n";
    return 2;
  }
  if (dead_after_seconds < 1 || dead_after_seconds > 3600 || keepalive_seconds < 1 || keepalive_seconds > 86400 ||
      keepalive_timeout_seconds < 1 || keepalive_timeout_seconds > 3600) {
    std::cerr << "syncd serve: --db-dead-after and --keepalive-timeout must be 1-3600 seconds, "
                 "--keepalive 1-86400\n";
    return 2;
  }
  if (o.compaction.defaults.versions < 0 || o.compaction.defaults.versions > (std::int64_t{1} << 50) ||
      o.compaction.defaults.seconds < 0 || o.compaction.defaults.seconds > std::int64_t{100} * 366 * 86400 ||
      compact_interval_seconds < 1 || compact_interval_seconds > 86400 || dedup_window_seconds < 0 ||
      dedup_window_seconds > std::int64_t{100} * 366 * 86400 || o.compaction.batch_rows < 1 ||
      o.compaction.batch_rows > 1'000'000) {
    std::cerr << "syncd serve: --retain-versions must be 0-2^50, --retain-seconds and --dedup-window 0-100 years "
                 "in seconds, --compact-interval 1-86400, --compact-batch 1-1000000\n";
    return 2;
  }
  o.compaction.interval = std::chrono::seconds(compact_interval_seconds);
  if (presence_ttl_seconds < 3 || presence_ttl_seconds > 3600) {
    std::cerr << "syncd serve: --presence-ttl must be 3-3600 seconds\n";
    return 2;
  }
  o.presence.ttl = std::chrono::seconds(presence_ttl_seconds);
  o.compaction.dedup_seconds = dedup_window_seconds;
  o.database_dead_after = std::chrono::seconds(dead_after_seconds);
  o.keepalive = std::chrono::seconds(keepalive_seconds);
  o.keepalive_timeout = std::chrono::seconds(keepalive_timeout_seconds);
  o.auth.leeway = std::chrono::seconds(leeway_seconds);
  for (auto [path, out, flag] : {std::tuple{&secret_file, &o.auth.secret, "--jwt-secret-file"},
                                 std::tuple{&public_key_file, &o.auth.public_key_pem, "--jwt-public-key-file"}}) {
    if (path->empty()) continue;
    auto bytes = slurp(*path);
    if (!bytes || bytes->empty()) {
      std::cerr << "syncd serve: cannot read " << flag << " " << *path << " (missing, unreadable or empty)\n";
      return 2;
    }
    *out = *std::move(bytes);
  }
  spdlog::set_level(spdlog::level::from_str(log_level));
  if (std::string error; !observe::set_log_format(log_format, &error)) {
    std::cerr << "syncd serve: " << error << "\n";
    return 2;
  }
  o.stream.idle_timeout = std::chrono::seconds(idle_seconds);
  o.stream.heartbeat_interval = std::chrono::seconds(heartbeat_seconds);

  // Refuse to serve on a schema that is behind this binary.
  auto migrations = store::bundled_migrations();
  if (!migrations.ok()) {
    spdlog::critical("{}", std::string(migrations.status().message()));
    return 1;
  }
  auto pending = store::Migrator(store::with_liveness_settings(o.database_url, o.database_dead_after),
                                 *std::move(migrations))
                     .pending();
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

  sync_runtime::raise_open_file_limit();
  sync_runtime::skip_mutex_deadlock_checks();
  server::Server server(o);
  if (auto st = server.start(); !st.ok()) {
    spdlog::critical("{}", std::string(st.message()));
    return 1;
  }
  spdlog::info("syncd serving gRPC on port {} (sync.v1.Sync, health, reflection), HTTP on port {} "
               "(/health, /healthz, /readyz, /stats, /metrics)",
               server.grpc_port(), server.http_port());
  if (o.auth.secret.empty() && o.auth.public_key_pem.empty()) {
    spdlog::warn("AUTHENTICATION IS OFF: anyone who can reach port {} may read and write every channel. "
                 "Pass --jwt-secret-file or --jwt-public-key-file to require tokens.",
                 server.grpc_port());
  } else {
    spdlog::info("authentication on: tokens signed {}{}{}", o.auth.secret.empty() ? "with the public key" : "with the shared secret",
                 o.auth.issuer.empty() ? "" : ", iss " + o.auth.issuer,
                 o.auth.audience.empty() ? "" : ", aud " + o.auth.audience);
  }

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("{}: finishing in-flight commits and closing streams", sig == SIGINT ? "SIGINT" : "SIGTERM");
  server.shut_down();
  spdlog::info("stopped");
  return 0;
}

}  // namespace syncd::cli
