// Small calls to a running syncd that tests share: its HTTP endpoints, and
// a wait until a channel's queued patches are committed.

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "harness.h"
#include "patches.h"

namespace syncd::testing {

std::string http_get(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  (void)write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  close(fd);
  return out;
}

double metric_value(const Syncd& s, const std::string& name) {
  const std::string body = http_get(s.http_port(), "/metrics");
  const std::string line = "\n" + name + " ";
  const auto at = body.find(line);
  return at == std::string::npos ? -1 : std::stod(body.substr(at + line.size()));
}

bool wait_idle(const Syncd& s, const std::string& channel, const std::string& marker_id) {
  api::PushRequest req;
  req.set_channel(channel);
  *req.add_patches() = create_node(marker_id, marker_id, "Marker");
  // The marker is answered after whatever was queued before it; if that
  // answer is a refusal (the database was still away), try again.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    api::PushResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (s.stub()->Push(&ctx, req, &resp).ok() && resp.acks_size() == 1 &&
        resp.acks(0).status() != api::Ack::REJECTED) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace syncd::testing
