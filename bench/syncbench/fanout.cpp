// syncbench fanout: W writers send create_node patches at a fixed total rate
// through a WebSocket server speaking the JSON protocol (sync-bridge, or the
// Node relay baseline in bench/node-relay) or, with --socketio, Socket.IO
// over WebSocket (sync-bridge's /socket.io/, or bench/socketio-relay), and
// R readers on the same channel receive them. Reports deliveries/s,
// publish -> receive latency and whether every reader got every accepted
// patch, in order, with no gap.
//
// Each patch carries its send time (this process's steady clock) in
// sentUs; readers pull that and the version (serverVersion, or a Socket.IO
// change's timestamp) out of the frame text without a full JSON parse, so
// the load generator stays cheap.

#include <atomic>
#include <charconv>
#include <cmath>
#include <iostream>
#include <thread>

#include "commands.h"
#include "report.h"
#include "socketio.h"
#include "ws_conn.h"

namespace syncbench {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count();
}

// The integer after `"key":` in a frame, or -1.
std::int64_t int_after(std::string_view frame, std::string_view key) {
  const auto at = frame.find(key);
  if (at == std::string_view::npos) return -1;
  std::int64_t v = -1;
  const char* first = frame.data() + at + key.size();
  std::from_chars(first, frame.data() + frame.size(), v);
  return v;
}

// Touched only on its connection's strand while the run is on.
struct Reader {
  std::shared_ptr<WsConn> conn;
  std::function<void(bool)> ready;  // Socket.IO: the join was answered
  std::string channel;
  bool socketio = false;
  std::int64_t last_version = -1;
  std::atomic<std::int64_t> received{0};
  std::int64_t out_of_order = 0;
  std::int64_t last_receive_us = 0;
  Latencies latencies;

  void on_frame(std::string_view frame) {
    if (socketio) {
      if (socketio_control(*conn, frame, channel, ready)) return;
      if (frame.substr(0, 17) != R"(42["sync:changes")") return;
      // An event may hold several changes: each has its sentUs, then its timestamp (the version).
      for (auto at = frame.find("\"sentUs\":"); at != std::string_view::npos; at = frame.find("\"sentUs\":", at + 1)) {
        const std::string_view rest = frame.substr(at);
        take(int_after(rest, "\"timestamp\":"), int_after(rest, "\"sentUs\":"));
      }
      return;
    }
    if (frame.find("\"patch_broadcast\"") == std::string_view::npos) return;
    take(int_after(frame, "\"serverVersion\":"), int_after(frame, "\"sentUs\":"));
  }

  void take(std::int64_t version, std::int64_t sent) {
    const std::int64_t t = now_us();
    if (last_version >= 0 && version != last_version + 1) ++out_of_order;
    last_version = version;
    if (sent > 0) latencies.us.push_back(t - sent);
    last_receive_us = t;
    received.fetch_add(1, std::memory_order_relaxed);
  }
};

struct Writer {
  std::shared_ptr<WsConn> conn;
  std::function<void(bool)> ready;
  std::string channel;
  bool socketio = false;
  std::unique_ptr<net::steady_timer> timer;
  std::int64_t sent = 0;
  std::atomic<std::int64_t> accepted{0}, not_accepted{0};
  std::atomic<bool> done{false};

  void on_frame(std::string_view frame) {
    if (socketio) {
      if (socketio_control(*conn, frame, channel, ready) || frame.substr(0, 2) != "43") return;
      (frame.find("\"success\":true") != std::string_view::npos ? accepted : not_accepted)++;
      return;
    }
    if (frame.find("\"patch_response\"") == std::string_view::npos) return;
    (frame.find("\"status\":\"accepted\"") != std::string_view::npos ? accepted : not_accepted)++;
  }

  // The next patch, sent at `sent_us`.
  std::string frame(const std::string& id, int index, std::int64_t sent_us) const {
    std::string f;
    if (socketio) {
      f = "42" + std::to_string(sent + 1) + R"(["sync:change",{"id":")";
      f.append(id).append(R"(","collection":"Bench","documentId":")").append(id);
      f.append(R"(","operation":"insert","data":{"sentUs":)").append(std::to_string(sent_us));
      f.append(R"(},"userId":"fanout-writer-)").append(std::to_string(index)).append("\"}]");
      return f;
    }
    f = R"({"type":"patch","payload":{"id":")";
    f.append(id).append(R"(","clientId":"fanout-writer-)").append(std::to_string(index));
    f.append(R"(","op":"create_node","nodeId":")").append(id);
    f.append(R"(","data":{"label":"Bench","properties":{"sentUs":)").append(std::to_string(sent_us));
    f.append("}}}}");
    return f;
  }
};

}  // namespace

int fanout(const FanoutOptions& o) {
  net::io_context ioc;
  tcp::endpoint ep(net::ip::make_address(o.host), static_cast<unsigned short>(o.port));
  const std::string run_id = std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  const std::string channel = o.channel_prefix + run_id;
  const std::string target =
      o.socketio ? std::string(kSocketIoTarget) : "/sync?since=head&channel=" + channel;

  // Phase 1: open every connection, in waves, on one thread.
  std::vector<std::unique_ptr<Reader>> readers;
  std::vector<std::unique_ptr<Writer>> writers;
  for (int i = 0; i < o.readers; ++i) readers.push_back(std::make_unique<Reader>());
  for (int i = 0; i < o.writers; ++i) writers.push_back(std::make_unique<Writer>());
  const int total = o.readers + o.writers;
  int opened = 0, failed = 0, started = 0;
  std::function<void()> open_more = [&] {
    for (int k = 0; k < 200 && started < total; ++k, ++started) {
      auto ready = [&](bool ok) {
        ok ? ++opened : ++failed;
        if (opened + failed == started) open_more();
        if (opened + failed == total) ioc.stop();
      };
      // Socket.IO: the first frame is the open packet; ready once joined.
      auto on_open = [&o, ready](std::shared_ptr<WsConn>* conn) {
        return [&o, ready, conn](bool ok) {
          if (!ok || !o.socketio) return ready(ok);
          (*conn)->send("40");
        };
      };
      std::shared_ptr<WsConn> c;
      if (started < o.readers) {
        Reader* r = readers[started].get();
        r->ready = ready, r->channel = channel, r->socketio = o.socketio;
        c = r->conn = std::make_shared<WsConn>(ioc, o.host, target, on_open(&r->conn),
                                               [r](std::string_view f) { r->on_frame(f); });
      } else {
        Writer* w = writers[started - o.readers].get();
        w->ready = ready, w->channel = channel, w->socketio = o.socketio;
        c = w->conn = std::make_shared<WsConn>(ioc, o.host, target, on_open(&w->conn),
                                               [w](std::string_view f) { w->on_frame(f); });
      }
      c->start(ep);
    }
  };
  open_more();
  ioc.run();
  ioc.restart();
  if (failed > 0) {
    std::cerr << "syncbench fanout: " << failed << " of " << total << " connections to " << o.host << ":" << o.port
              << " failed; is the server up and is the open-file limit high enough?\n";
    return 1;
  }

  // Phase 2: writers send on a fixed schedule; every thread runs the loop.
  const auto interval = std::chrono::duration<double>(static_cast<double>(o.writers) / o.rate);
  const auto per_writer = static_cast<std::int64_t>(std::llround(o.rate * o.duration.count() / 1000.0 / o.writers));
  const std::int64_t first_send_us = now_us();
  const auto t0 = Clock::now();
  for (int i = 0; i < o.writers; ++i) {
    Writer* w = writers[i].get();
    w->timer = std::make_unique<net::steady_timer>(w->conn->executor());
    // Writers are staggered across one interval so the total rate is even.
    auto start = t0 + std::chrono::duration_cast<Clock::duration>(interval * (static_cast<double>(i) / o.writers));
    auto tick = std::make_shared<std::function<void(Clock::time_point)>>();
    *tick = [w, i, interval, per_writer, run_id, tick](Clock::time_point at) {
      w->timer->expires_at(at);
      w->timer->async_wait([w, i, interval, per_writer, run_id, tick, at](boost::system::error_code ec) {
        if (ec) return;
        std::string id = "fo-";
        id.append(run_id).append("-").append(std::to_string(i)).append("-").append(std::to_string(w->sent));
        w->conn->send(w->frame(id, i, now_us()));
        if (++w->sent == per_writer) {
          w->done = true;
          tick->operator=(nullptr);  // break the cycle: the last tick owns itself
          return;
        }
        (*tick)(at + std::chrono::duration_cast<Clock::duration>(interval));
      });
    };
    net::post(w->conn->executor(), [tick, start] { (*tick)(start); });
  }
  std::vector<std::thread> threads;
  auto guard = net::make_work_guard(ioc);
  for (int t = 0; t < o.threads; ++t) threads.emplace_back([&] { ioc.run(); });

  // Wait for the writers' acks, then for every reader to have every patch.
  auto acked = [&] {
    std::int64_t a = 0, n = 0;
    for (auto& w : writers) a += w->accepted, n += w->not_accepted;
    return std::pair{a, n};
  };
  const auto deadline = Clock::now() + o.duration + std::chrono::seconds(30);
  std::int64_t expected = 0;
  while (Clock::now() < deadline) {
    bool all_sent = true;
    for (auto& w : writers) all_sent = all_sent && w->done;
    auto [a, n] = acked();
    if (all_sent && a + n == per_writer * o.writers) {
      expected = a;
      std::int64_t got = 0;
      for (auto& r : readers) got += r->received.load(std::memory_order_relaxed);
      if (got == expected * o.readers) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& r : readers) net::post(r->conn->executor(), [c = r->conn] { c->close(); });
  for (auto& w : writers) net::post(w->conn->executor(), [c = w->conn] { c->close(); });
  guard.reset();
  ioc.stop();
  for (auto& t : threads) t.join();

  auto [accepted, not_accepted] = acked();
  std::int64_t deliveries = 0, disorder = 0, last_us = first_send_us, complete = 0;
  Latencies all;
  for (auto& r : readers) {
    deliveries += r->received;
    disorder += r->out_of_order;
    last_us = std::max(last_us, r->last_receive_us);
    if (r->received == accepted && r->out_of_order == 0) ++complete;
    all.merge(r->latencies);
  }
  const double seconds = static_cast<double>(last_us - first_send_us) / 1e6;
  const double rate = seconds > 0 ? static_cast<double>(deliveries) / seconds : 0;
  const bool ok = not_accepted == 0 && accepted == per_writer * o.writers && complete == o.readers;
  nlohmann::ordered_json out = {
      {"command", "fanout"},
      {"deliveries_per_s", std::round(rate)},
      {"latency_ms", {{"p50", all.quantile_ms(0.5)}, {"p99", all.quantile_ms(0.99)}, {"max", all.quantile_ms(1.0)}}},
      {"patches_accepted", accepted},
      {"patches_not_accepted", not_accepted},
      {"deliveries", deliveries},
      {"readers_complete_in_order", complete},
      {"out_of_order", disorder},
      {"seconds", seconds},
      {"parameters", {{"server", o.host + ":" + std::to_string(o.port)}, {"protocol", o.socketio ? "socketio" : "json"},
                      {"writers", o.writers}, {"readers", o.readers},
                      {"rate", o.rate}, {"duration_s", o.duration.count() / 1000.0}, {"threads", o.threads}}},
      {"machine", machine()}};
  if (!ok) {
    out["errors"] = std::to_string(o.readers - complete) + " readers missed patches or saw them out of order; " +
                    std::to_string(not_accepted) + " patches not accepted; " +
                    std::to_string(per_writer * o.writers - accepted - not_accepted) + " unanswered";
  }
  if (o.json) {
    std::cout << out.dump() << std::endl;
  } else {
    std::cout << "fanout: " << std::llround(rate) << " deliveries/s (" << accepted << " patches x " << o.readers
              << " readers in " << std::llround(seconds * 100) / 100.0 << " s); latency p50 " << all.quantile_ms(0.5)
              << " ms, p99 " << all.quantile_ms(0.99) << " ms; " << complete << "/" << o.readers
              << " readers got every patch in order\n";
    if (!ok) std::cout << "FAILED: " << out["errors"].get<std::string>() << "\n";
  }
  return ok ? 0 : 1;
}

}  // namespace syncbench
