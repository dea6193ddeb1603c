#pragma once
// syncbench's subcommands and their parameters.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace syncbench {

struct PushOptions {
  std::string target = "syncd";  // or "etcd": the same load as KV.Put calls
  std::string server = "localhost:50051";
  std::string etcd = "127.0.0.1:2379";  // with target "etcd"
  std::string channel_prefix = "bench-";
  int streams = 64;
  int channels = 8;
  int window = 32;
  double rate = 0;  // offered patches/s over all streams; 0: as fast as the window allows
  bool batch = true;  // sessions opened with `batch`
  std::chrono::milliseconds warmup{2000};
  std::chrono::milliseconds duration{10000};
  bool json = false;
};
int push(const PushOptions& o);
// push's load on etcd: each stream keeps `window` Puts outstanding on keys
// /bench/<channel>/..., with push's patch bytes as the value.
int etcd_push(const PushOptions& o);

struct AnchorOptions {
  std::string database_url;
  std::string mode = "per-patch";  // or "batched"
  int connections = 64;            // per-patch
  int batch = 500;                 // batched
  int channels = 8;
  std::chrono::milliseconds duration{10000};
  bool json = false;
};
int ingest_anchor(const AnchorOptions& o);

struct IdleOptions {
  std::string bridge_host = "127.0.0.1";
  int bridge_port = 8080;
  std::string server = "localhost:50051";  // syncd, for the idle gRPC sessions
  int bridge_pid = 0;
  int syncd_pid = 0;
  int connections = 10000;
  int channels = 100;
  int settle_ms = 3000;
  bool socketio = false;  // Socket.IO sockets (each joins a channel) instead of /sync WebSockets
  // Patches written into each channel first (needs database_url); each
  // WebSocket then reads them all before it counts as idle.
  int history = 0;
  std::string database_url;
  bool json = false;
};
int idle(const IdleOptions& o);

struct FanoutOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string channel_prefix = "fanout-";
  int writers = 4;
  int readers = 1000;
  double rate = 300;  // patches/s over all writers
  int threads = 2;
  std::chrono::milliseconds duration{10000};
  bool socketio = false;  // Socket.IO over WebSocket (sync-bridge's /socket.io/, or bench/socketio-relay)
  bool json = false;
};
int fanout(const FanoutOptions& o);

struct WatchFanoutOptions {
  std::string target = "syncd";  // or "etcd"
  std::string server = "localhost:50051";
  std::string etcd = "127.0.0.1:2379";
  std::string channel_prefix = "watch-";
  int watchers = 100;
  int writers = 4;
  double rate = 300;  // writes/s over all writers
  std::chrono::milliseconds duration{10000};
  std::chrono::milliseconds settle{1000};  // after the watchers start, before the first write
  int server_pid = 0;  // when set: the server's memory growth per watcher, read before the first write
  bool json = false;
};
int watch_fanout(const WatchFanoutOptions& o);

struct CatchupOptions {
  std::string database_url;
  std::string server = "localhost:50051";
  std::int64_t patches = 1'000'000;
  bool decode = false;  // parse every page into objects (the client's CPU then dominates)
  bool json = false;
};
int catchup(const CatchupOptions& o);

struct JoinOptions {
  std::string database_url;
  std::string server = "localhost:50051";
  std::vector<std::int64_t> histories{250'000, 1'000'000};
  std::int64_t state = 10'000;
  int repeat = 5;  // joins of each kind, alternately; medians reported
  bool json = false;
};
int join(const JoinOptions& o);

}  // namespace syncbench
