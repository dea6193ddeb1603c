// syncbench idle: opens N WebSocket connections through sync-bridge (the
// JSON protocol, or with --socketio Socket.IO sockets that each joined a
// channel), lets them sit, and reports how much the bridge's resident
// memory grew per connection; then opens N gRPC Sessions straight to syncd and reports the
// same for syncd. (The bridge's sockets share one Watch per channel, so
// they cost syncd almost nothing: the sessions are measured directly.)
// With --history N each channel first gets N patches, and a socket counts
// as idle once it has read them all: what a socket keeps after a burst.

#include <cmath>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include "api/grpc.h"
#include "commands.h"
#include "fill.h"
#include "report.h"
#include "socketio.h"
#include "ws_conn.h"

namespace syncbench {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// One idle Session: opens its channel, then only reads (heartbeats).
class IdleSession final : public grpc::ClientBidiReactor<api::SessionRequest, api::SessionResponse> {
 public:
  IdleSession(api::Sync::Stub& stub, const std::string& channel, std::function<void(bool)> opened)
      : opened_(std::move(opened)) {
    open_.mutable_open()->set_channel(channel);
    open_.mutable_open()->set_no_history(true);
    stub.async()->Session(&ctx_, this);
    StartWrite(&open_);
    StartRead(&in_);
    StartCall();
  }
  void cancel() { ctx_.TryCancel(); }
  void OnWriteDone(bool) override {}
  void OnReadDone(bool ok) override {
    if (opened_) {
      auto f = std::move(opened_);
      opened_ = nullptr;
      f(ok && in_.has_opened());
    }
    if (ok) StartRead(&in_);
  }
  void OnDone(const grpc::Status&) override {
    std::lock_guard lock(mu_);
    done_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return done_; });
  }

 private:
  grpc::ClientContext ctx_;
  api::SessionRequest open_;
  api::SessionResponse in_;
  std::function<void(bool)> opened_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

// Opens `n` idle Sessions to syncd; returns its RSS growth in KiB and the
// number that opened.
std::pair<long, int> idle_sessions(const IdleOptions& o) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  auto stub = api::Sync::NewStub(grpc::CreateCustomChannel(o.server, grpc::InsecureChannelCredentials(), args));
  const long before = rss_kib(o.syncd_pid);
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0, opened = 0;
  std::vector<std::unique_ptr<IdleSession>> sessions;
  for (int i = 0; i < o.connections; ++i) {
    sessions.push_back(std::make_unique<IdleSession>(*stub, "idle-" + std::to_string(i % o.channels), [&](bool ok) {
      std::lock_guard lock(mu);
      ++answered;
      if (ok) ++opened;
      cv.notify_all();
    }));
  }
  {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(60), [&] { return answered == o.connections; });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(o.settle_ms));
  const long after = rss_kib(o.syncd_pid);
  for (auto& s : sessions) s->cancel();
  for (auto& s : sessions) s->wait();
  return {after - before, opened};
}

}  // namespace

int idle(const IdleOptions& o) {
  net::io_context ioc(1);
  tcp::endpoint ep(net::ip::make_address(o.bridge_host), static_cast<unsigned short>(o.bridge_port));
  const long bridge0 = rss_kib(o.bridge_pid), syncd0 = rss_kib(o.syncd_pid);
  if (bridge0 < 0 || syncd0 < 0) {
    std::cerr << "syncbench idle: cannot read the RSS of --bridge-pid " << o.bridge_pid << " or --syncd-pid "
              << o.syncd_pid << " (both must run on this machine)\n";
    return 2;
  }
  // Fresh names with history: fill() creates its channels.
  const std::string prefix = o.history > 0 ? "idle-" + std::to_string(::getpid()) + "-" : "idle-";
  if (o.history > 0) {
    std::cerr << "idle: writing " << o.history << " patches into each of " << o.channels << " channels..." << std::endl;
    for (int c = 0; c < o.channels; ++c) syncbench::fill(o.database_url, prefix + std::to_string(c), o.history);
  }
  std::vector<std::shared_ptr<WsConn>> conns(o.connections);
  int ready = 0, failed = 0, started = 0;
  // Open in waves, so the bridge's accept queue is not the thing measured.
  std::function<void()> open_more = [&] {
    for (int k = 0; k < 200 && started < o.connections; ++k, ++started) {
      const std::string channel = prefix + std::to_string(started % o.channels);
      auto done = [&](bool ok) {
        ok ? ++ready : ++failed;
        if (ready + failed == started) open_more();
        if (ready + failed == o.connections) ioc.stop();
      };
      auto& slot = conns[started];
      if (o.socketio) {
        // Ready once joined: the open packet first, then "40", then the join.
        slot = std::make_shared<WsConn>(
            ioc, o.bridge_host, kSocketIoTarget,
            [&slot, done](bool ok) {
              if (!ok) return done(false);
              slot->send("40");
            },
            [&slot, channel, done](std::string_view frame) { socketio_control(*slot, frame, channel, done); });
      } else if (o.history > 0) {
        // Ready once the last page of the history has arrived; failed when
        // the socket ends first. Counted once either way.
        auto settled = std::make_shared<bool>(false);
        auto once = [done, settled](bool ok) {
          if (*settled) return;
          *settled = true;
          done(ok);
        };
        slot = std::make_shared<WsConn>(
            ioc, o.bridge_host, "/sync?since=0&channel=" + channel,
            [once](bool ok) {
              if (!ok) once(false);
            },
            [once](std::string_view frame) {
              if (frame.find("\"type\":\"sync_state\"") != std::string_view::npos &&
                  frame.find("\"hasMore\":false") != std::string_view::npos) {
                once(true);
              }
            });
        slot->also_first_frame();
        slot->on_end([once] { once(false); });
      } else {
        slot = std::make_shared<WsConn>(ioc, o.bridge_host, "/sync?since=head&channel=" + channel, done);
      }
      slot->start(ep);
    }
  };
  open_more();
  ioc.run();
  ioc.restart();
  // Let both servers settle, keep answering pings meanwhile.
  ioc.run_for(std::chrono::milliseconds(o.settle_ms));
  const long bridge1 = rss_kib(o.bridge_pid), syncd1 = rss_kib(o.syncd_pid);
  const double per_ws = ready ? (bridge1 - bridge0) * 1024.0 / ready : 0;
  for (auto& c : conns) {
    if (c) c->close();
  }
  ioc.restart();
  ioc.run_for(std::chrono::milliseconds(500));
  const auto [session_kib, sessions_open] = idle_sessions(o);
  const double per_session = sessions_open ? session_kib * 1024.0 / sessions_open : 0;
  nlohmann::ordered_json out = {
      {"command", "idle"}, {"connections_open", ready}, {"connections_failed", failed},
      {"bridge_rss_kib", {{"before", bridge0}, {"after", bridge1}}},
      {"syncd_rss_kib_with_websockets", {{"before", syncd0}, {"after", syncd1}}},
      {"grpc_sessions_open", sessions_open},
      {"syncd_rss_kib_growth_with_sessions", session_kib},
      {"bytes_per_websocket_in_bridge", std::round(per_ws)},
      {"bytes_per_session_in_syncd", std::round(per_session)},
      {"parameters", {{"connections", o.connections}, {"channels", o.channels}, {"history", o.history}, {"settle_ms", o.settle_ms},
                      {"protocol", o.socketio ? "socketio" : "json"}}},
      {"machine", machine()}};
  if (o.json) {
    std::cout << out.dump() << std::endl;
  } else {
    std::cout << "idle: " << ready << " connections open (" << failed << " failed); bridge +" << (bridge1 - bridge0)
              << " KiB = " << std::llround(per_ws / 1024.0 * 100) / 100.0 << " KiB per WebSocket (syncd +"
              << (syncd1 - syncd0) << " KiB meanwhile); " << sessions_open << " gRPC sessions: syncd +" << session_kib
              << " KiB = " << std::llround(per_session / 1024.0 * 100) / 100.0 << " KiB per session\n";
  }
  return failed == 0 && ready == o.connections && sessions_open == o.connections ? 0 : 1;
}

}  // namespace syncbench
