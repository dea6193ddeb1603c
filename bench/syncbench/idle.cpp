// syncbench idle: opens N WebSocket connections through sync-bridge (each
// becomes one upstream gRPC Session in syncd), lets them sit, and reports
// how much the resident memory of both processes grew per connection.

#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.h"
#include "report.h"
#include "ws_conn.h"

namespace syncbench {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

long rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
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
  std::vector<std::shared_ptr<WsConn>> conns;
  int ready = 0, failed = 0, started = 0;
  // Open in waves, so the bridge's accept queue is not the thing measured.
  std::function<void()> open_more = [&] {
    for (int k = 0; k < 200 && started < o.connections; ++k, ++started) {
      auto c = std::make_shared<WsConn>(ioc, o.bridge_host,
                                        "/sync?since=head&channel=idle-" + std::to_string(started % o.channels),
                                        [&](bool ok) {
                                          ok ? ++ready : ++failed;
                                          if (ready + failed == started) open_more();
                                          if (ready + failed == o.connections) ioc.stop();
                                        });
      conns.push_back(c);
      c->start(ep);
    }
  };
  open_more();
  ioc.run();
  ioc.restart();
  // Let both servers settle, keep answering pings meanwhile.
  ioc.run_for(std::chrono::milliseconds(o.settle_ms));
  const long bridge1 = rss_kib(o.bridge_pid), syncd1 = rss_kib(o.syncd_pid);
  const double per_ws = ready ? (bridge1 - bridge0) * 1024.0 / ready : 0;
  const double per_session = ready ? (syncd1 - syncd0) * 1024.0 / ready : 0;
  nlohmann::ordered_json out = {
      {"command", "idle"}, {"connections_open", ready}, {"connections_failed", failed},
      {"bridge_rss_kib", {{"before", bridge0}, {"after", bridge1}}},
      {"syncd_rss_kib", {{"before", syncd0}, {"after", syncd1}}},
      {"bytes_per_websocket_in_bridge", std::round(per_ws)},
      {"bytes_per_session_in_syncd", std::round(per_session)},
      {"parameters", {{"connections", o.connections}, {"channels", o.channels}, {"settle_ms", o.settle_ms}}},
      {"machine", machine()}};
  if (o.json) {
    std::cout << out.dump() << std::endl;
  } else {
    std::cout << "idle: " << ready << " connections open (" << failed << " failed); bridge +" << (bridge1 - bridge0)
              << " KiB = " << std::llround(per_ws / 1024.0 * 100) / 100.0 << " KiB per WebSocket; syncd +"
              << (syncd1 - syncd0) << " KiB = " << std::llround(per_session / 1024.0 * 100) / 100.0
              << " KiB per session\n";
  }
  for (auto& c : conns) c->close();
  return failed == 0 && ready == o.connections ? 0 : 1;
}

}  // namespace syncbench
