// syncbench: load generator and anchors for syncd. See BENCHMARKS.md.

#include <boost/program_options.hpp>
#include <cstdlib>
#include <iostream>

#include "api/process.h"
#include "commands.h"

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage = R"(syncbench - measure syncd and its anchors

Usage:
  syncbench push [flags]            N gRPC Session streams writing create_node patches with a window
                                    of un-acked patches: accepted patches/s, ack latency p50/p99/p999;
                                    --target etcd: the same load as etcd KV.Put calls (bench/etcd.sh)
  syncbench ingest-anchor [flags]   the same rows written straight to PostgreSQL: --mode per-patch
                                    (one transaction per patch, 64 connections) or batched (500 per tx)
  syncbench fanout [flags]          W writers at a fixed total rate and R readers on one channel through
                                    sync-bridge (or the Node relay in bench/node-relay): deliveries/s,
                                    publish -> receive latency p50/p99, every reader checked for every patch in order
  syncbench watch-fanout [flags]    R gRPC Watch streams on one channel and W writers at a fixed total rate,
                                    on syncd or (--target etcd) on one etcd key prefix: deliveries/s,
                                    write -> receive latency p50/p99, every watcher checked complete and in order
  syncbench catchup [flags]         a channel pre-filled with 1,000,000 patches read from version 0 over
                                    gRPC (Session history pages), beside COPY (SELECT ... ORDER BY version) TO STDOUT
  syncbench join [flags]            a new client reaching the head of a long channel: full replay against
                                    a snapshot after compaction, for two history lengths with one state size;
                                    also times the compaction and the log's bytes before and after
  syncbench idle [flags]            N idle WebSockets through sync-bridge (each one upstream Session in
                                    syncd): RSS growth per connection of both processes

syncbench raises its open-file limit to the hard limit; syncd and sync-bridge do the same.

Every command takes --json (one JSON object), --smoke (a few seconds, small numbers, checks
correctness, not speed) and --help. All figures in BENCHMARKS.md come from these commands.
)";

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

bool parse(int argc, char** argv, po::options_description& flags, po::variables_map& vm, int& rc) {
  try {
    po::store(po::parse_command_line(argc, argv, flags), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "syncbench: " << e.what() << "\n\n" << flags << "\n";
    rc = 2;
    return false;
  }
  if (vm.count("help")) {
    std::cout << flags << "\n";
    rc = 0;
    return false;
  }
  return true;
}

int run(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  sync_runtime::skip_mutex_deadlock_checks();
  po::variables_map vm;
  int rc = 0;
  bool smoke = false;
  if (command == "push") {
    syncbench::PushOptions o;
    o.server = env_or("SYNC_SERVER", "localhost:50051");
    int duration_ms = 10000, warmup_ms = 2000;
    po::options_description f("Usage: syncbench push [flags]\n\nFlags");
    f.add_options()("help,h", "show this help")("server", po::value(&o.server)->default_value(o.server), "syncd (or $SYNC_SERVER)")(
        "target", po::value(&o.target)->default_value(o.target),
        "syncd, or etcd: each stream keeps --window KV.Put calls outstanding on keys /bench/<channel>/..., "
        "the value being the patch's bytes; puts/s and put latency in the same report")(
        "etcd", po::value(&o.etcd)->default_value(o.etcd), "etcd's gRPC address, with --target etcd")(
        "streams", po::value(&o.streams)->default_value(o.streams), "Session streams (with etcd: Put windows)")(
        "channels", po::value(&o.channels)->default_value(o.channels), "channels they spread over")(
        "window", po::value(&o.window)->default_value(o.window), "un-acked patches per stream")(
        "rate", po::value(&o.rate)->default_value(o.rate), "offered patches/s over all streams (0: as fast as the window allows); latency then counts from each patch's scheduled time")(
        "batch", po::value(&o.batch)->default_value(o.batch),
        "1: open sessions with `batch` (queued acks and broadcasts come together); 0: one message each")(
        "duration-ms", po::value(&duration_ms)->default_value(duration_ms), "measured time")(
        "warmup-ms", po::value(&warmup_ms)->default_value(warmup_ms), "load before measuring")(
        "channel-prefix", po::value(&o.channel_prefix)->default_value(o.channel_prefix), "use fresh channels per run")(
        "json", po::bool_switch(&o.json), "print one JSON object")("smoke", po::bool_switch(&smoke), "small and short");
    if (!parse(argc - 1, argv + 1, f, vm, rc)) return rc;
    o.duration = std::chrono::milliseconds(duration_ms);
    o.warmup = std::chrono::milliseconds(warmup_ms);
    if (smoke) {
      o.streams = 4, o.channels = 2, o.window = 8;
      o.duration = std::chrono::milliseconds(1000), o.warmup = std::chrono::milliseconds(200);
    }
    if (o.streams < 1 || o.channels < 1 || o.window < 1 || o.rate < 0) {
      std::cerr << "syncbench push: --streams, --channels and --window must be >= 1, --rate >= 0\n";
      return 2;
    }
    if (o.target == "etcd") return syncbench::etcd_push(o);
    if (o.target != "syncd") {
      std::cerr << "syncbench push: --target is syncd or etcd\n";
      return 2;
    }
    return syncbench::push(o);
  }
  if (command == "ingest-anchor") {
    syncbench::AnchorOptions o;
    o.database_url = env_or("DATABASE_URL", "");
    int duration_ms = 10000;
    po::options_description f("Usage: syncbench ingest-anchor [flags]\n\nFlags");
    f.add_options()("help,h", "show this help")("database-url", po::value(&o.database_url)->default_value(o.database_url, "$DATABASE_URL"), "a migrated syncd database")(
        "mode", po::value(&o.mode)->default_value(o.mode), "per-patch or batched")(
        "connections", po::value(&o.connections)->default_value(o.connections), "per-patch: connections")(
        "batch", po::value(&o.batch)->default_value(o.batch), "batched: patches per transaction")(
        "channels", po::value(&o.channels)->default_value(o.channels), "channels written")(
        "duration-ms", po::value(&duration_ms)->default_value(duration_ms), "measured time")(
        "json", po::bool_switch(&o.json), "print one JSON object")("smoke", po::bool_switch(&smoke), "small and short");
    if (!parse(argc - 1, argv + 1, f, vm, rc)) return rc;
    o.duration = std::chrono::milliseconds(duration_ms);
    if (smoke) o.connections = 4, o.batch = 20, o.duration = std::chrono::milliseconds(500);
    if (o.database_url.empty() || (o.mode != "per-patch" && o.mode != "batched")) {
      std::cerr << "syncbench ingest-anchor: needs --database-url (or DATABASE_URL) and --mode per-patch|batched\n";
      return 2;
    }
    return syncbench::ingest_anchor(o);
  }
  if (command == "catchup") {
    syncbench::CatchupOptions o;
    o.database_url = env_or("DATABASE_URL", "");
    o.server = env_or("SYNC_SERVER", "localhost:50051");
    po::options_description f("Usage: syncbench catchup [flags]\n\nFlags");
    f.add_options()("help,h", "show this help")(
        "database-url", po::value(&o.database_url)->default_value(o.database_url, "$DATABASE_URL"), "syncd's database (filled directly)")(
        "server", po::value(&o.server)->default_value(o.server), "syncd (or $SYNC_SERVER)")(
        "patches", po::value(&o.patches)->default_value(o.patches), "patches in the channel")(
        "decode", po::bool_switch(&o.decode), "parse every page into sync.v1 objects (default: walk the bytes, as COPY's client does)")(
        "json", po::bool_switch(&o.json), "print one JSON object")("smoke", po::bool_switch(&smoke), "small and short");
    if (!parse(argc - 1, argv + 1, f, vm, rc)) return rc;
    if (smoke) o.patches = 5000;
    if (o.database_url.empty() || o.patches < 1) {
      std::cerr << "syncbench catchup: needs --database-url (or DATABASE_URL) and --patches >= 1\n";
      return 2;
    }
    return syncbench::catchup(o);
  }
  if (command == "join") {
    syncbench::JoinOptions o;
    o.database_url = env_or("DATABASE_URL", "");
    o.server = env_or("SYNC_SERVER", "localhost:50051");
    po::options_description f("Usage: syncbench join [flags]\n\nFlags");
    f.add_options()("help,h", "show this help")(
        "database-url", po::value(&o.database_url)->default_value(o.database_url, "$DATABASE_URL"), "syncd's database (filled directly)")(
        "server", po::value(&o.server)->default_value(o.server), "syncd (or $SYNC_SERVER)")(
        "history", po::value(&o.histories)->multitoken()->default_value(o.histories, "250000 1000000"),
        "history lengths to measure")(
        "state", po::value(&o.state)->default_value(o.state), "nodes in the state (the same for every history)")(
        "repeat", po::value(&o.repeat)->default_value(o.repeat), "joins of each kind, alternately (medians reported)")(
        "json", po::bool_switch(&o.json), "print one JSON object")("smoke", po::bool_switch(&smoke), "small and short");
    if (!parse(argc - 1, argv + 1, f, vm, rc)) return rc;
    if (smoke) o.histories = {3000}, o.state = 500, o.repeat = 1;
    bool sane = !o.database_url.empty() && o.state >= 1 && o.repeat >= 1;
    for (auto h : o.histories) sane &= h >= o.state;
    if (!sane) {
      std::cerr << "syncbench join: needs --database-url (or DATABASE_URL), --state >= 1 and every --history >= --state\n";
      return 2;
    }
    return syncbench::join(o);
  }
  if (command == "fanout") {
    syncbench::FanoutOptions o;
    std::string server = "127.0.0.1:8080";
    int duration_ms = 10000;
    po::options_description f("Usage: syncbench fanout [flags]\n\nFlags");
    f.add_options()("help,h", "show this help")("bridge", po::value(&server)->default_value(server), "sync-bridge (or a Node relay baseline) IP:PORT")(
        "writers", po::value(&o.writers)->default_value(o.writers), "writing WebSockets")(
        "readers", po::value(&o.readers)->default_value(o.readers), "reading WebSockets (up to the open-file limit)")(
        "rate", po::value(&o.rate)->default_value(o.rate), "patches/s over all writers")(
        "duration-ms", po::value(&duration_ms)->default_value(duration_ms), "time the writers write")(
        "threads", po::value(&o.threads)->default_value(o.threads), "syncbench's own I/O threads")(
        "channel-prefix", po::value(&o.channel_prefix)->default_value(o.channel_prefix), "each run uses a fresh channel")(
        "socketio", po::bool_switch(&o.socketio),
        "speak Socket.IO over WebSocket (sync:join, sync:change, sync:changes) instead of the JSON protocol")(
        "json", po::bool_switch(&o.json), "print one JSON object")("smoke", po::bool_switch(&smoke), "small and short");
    if (!parse(argc - 1, argv + 1, f, vm, rc)) return rc;
    const auto colon = server.rfind(':');
    o.host = server.substr(0, colon);
    o.port = colon == std::string::npos ? 8080 : std::atoi(server.c_str() + colon + 1);
    o.duration = std::chrono::milliseconds(duration_ms);
    if (smoke) o.writers = 2, o.readers = 20, o.rate = 200, o.duration = std::chrono::milliseconds(1000);
    if (o.writers < 1 || o.readers < 1 || o.rate <= 0 || o.threads < 1 || duration_ms < 1) {
      std::cerr << "syncbench fanout: --writers, --readers, --threads, --duration-ms must be >= 1 and --rate > 0\n";
      return 2;
    }
    sync_runtime::raise_open_file_limit();
    return syncbench::fanout(o);
  }
  if (command == "watch-fanout") {
    syncbench::WatchFanoutOptions o;
    o.server = env_or("SYNC_SERVER", "localhost:50051");
    int duration_ms = 10000, settle_ms = 1000;
    po::options_description f("Usage: syncbench watch-fanout [flags]\n\nFlags");
    f.add_options()("help,h", "show this help")(
        "target", po::value(&o.target)->default_value(o.target), "syncd (Watch streams on one channel, Push writes) or etcd "
        "(Watch streams on one key prefix, KV.Put writes)")(
        "server", po::value(&o.server)->default_value(o.server), "syncd (or $SYNC_SERVER)")(
        "etcd", po::value(&o.etcd)->default_value(o.etcd), "etcd's gRPC address, with --target etcd")(
        "watchers", po::value(&o.watchers)->default_value(o.watchers), "gRPC Watch streams")(
        "writers", po::value(&o.writers)->default_value(o.writers), "writing connections")(
        "rate", po::value(&o.rate)->default_value(o.rate), "writes/s over all writers")(
        "duration-ms", po::value(&duration_ms)->default_value(duration_ms), "time the writers write")(
        "settle-ms", po::value(&settle_ms)->default_value(settle_ms), "wait after the watchers start")(
        "server-pid", po::value(&o.server_pid)->default_value(o.server_pid),
        "the server's pid (on this machine): report its resident memory growth per watcher, "
        "read after --settle-ms, before the first write")(
        "channel-prefix", po::value(&o.channel_prefix)->default_value(o.channel_prefix), "each run uses a fresh channel (key prefix)")(
        "json", po::bool_switch(&o.json), "print one JSON object")("smoke", po::bool_switch(&smoke), "small and short");
    if (!parse(argc - 1, argv + 1, f, vm, rc)) return rc;
    o.duration = std::chrono::milliseconds(duration_ms);
    o.settle = std::chrono::milliseconds(settle_ms);
    if (smoke) o.watchers = 20, o.writers = 2, o.rate = 200, o.duration = std::chrono::milliseconds(1000);
    if ((o.target != "syncd" && o.target != "etcd") || o.watchers < 1 || o.writers < 1 || o.rate <= 0 ||
        duration_ms < 1 || settle_ms < 0) {
      std::cerr << "syncbench watch-fanout: --target is syncd or etcd; --watchers, --writers, --duration-ms must be "
                   ">= 1, --rate > 0, --settle-ms >= 0\n";
      return 2;
    }
    sync_runtime::raise_open_file_limit();
    return syncbench::watch_fanout(o);
  }
  if (command == "idle") {
    syncbench::IdleOptions o;
    o.database_url = env_or("DATABASE_URL", "");
    std::string bridge = "127.0.0.1:8080";
    po::options_description f("Usage: syncbench idle --bridge-pid P --syncd-pid P [flags]\n\nFlags");
    f.add_options()("help,h", "show this help")("bridge", po::value(&bridge)->default_value(bridge), "sync-bridge IP:PORT")(
        "server", po::value(&o.server)->default_value(o.server), "syncd, for the idle gRPC sessions")(
        "bridge-pid", po::value(&o.bridge_pid), "sync-bridge's process id (on this machine)")(
        "syncd-pid", po::value(&o.syncd_pid), "syncd's process id (on this machine)")(
        "connections", po::value(&o.connections)->default_value(o.connections), "idle WebSockets")(
        "channels", po::value(&o.channels)->default_value(o.channels), "channels they spread over")(
        "settle-ms", po::value(&o.settle_ms)->default_value(o.settle_ms), "wait before measuring")(
        "socketio", po::bool_switch(&o.socketio), "Socket.IO sockets (sync:join each) instead of /sync WebSockets")(
        "history", po::value(&o.history)->default_value(o.history),
        "patches written into each channel first, which every WebSocket reads before it idles")(
        "database-url", po::value(&o.database_url)->default_value(o.database_url, "$DATABASE_URL"),
        "syncd's database, for --history")(
        "json", po::bool_switch(&o.json), "print one JSON object")("smoke", po::bool_switch(&smoke), "small and short");
    if (!parse(argc - 1, argv + 1, f, vm, rc)) return rc;
    const auto colon = bridge.rfind(':');
    o.bridge_host = bridge.substr(0, colon);
    o.bridge_port = colon == std::string::npos ? 8080 : std::atoi(bridge.c_str() + colon + 1);
    if (smoke) o.connections = 50, o.channels = 5, o.settle_ms = 300;
    if (o.bridge_pid <= 0 || o.syncd_pid <= 0) {
      std::cerr << "syncbench idle: give --bridge-pid and --syncd-pid\n";
      return 2;
    }
    if (o.history < 0 || (o.history > 0 && (o.database_url.empty() || o.socketio))) {
      std::cerr << "syncbench idle: --history N needs --database-url (or DATABASE_URL) and /sync WebSockets\n";
      return 2;
    }
    sync_runtime::raise_open_file_limit();
    return syncbench::idle(o);
  }
  std::cerr << "syncbench: unknown command \"" << command << "\"\n\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    // A step on the main thread that failed (mostly a database step:
    // filling channels, an anchor): say so rather than abort.
    std::cerr << "syncbench " << (argc > 1 ? argv[1] : "") << ": " << e.what()
              << "\n(check --server, and --database-url when given: reachable, and migrated by `syncd migrate up`)\n";
    return 1;
  }
}
