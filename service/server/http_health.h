#pragma once
// A small HTTP/1.1 endpoint beside the gRPC port. Runs its own thread.
//   GET /healthz  liveness: 200 while the server serves, 503 once it is
//                 stopping. A database outage does not change it: a
//                 restart would not help.
//   GET /readyz   readiness: 200 when patches can be stored now, 503 while
//                 the database is unreachable or the server is stopping.
//                 For load balancers and orchestrators.
//   GET /health   {status, timestamp, activeConnections}: the shape of the
//                 original relay's health check; 503 once stopping.
//   GET /stats    what the server knows about its channels and clients
//                 (JSON; see Endpoints::stats).
//   GET /metrics  Prometheus text exposition (observe/metrics.h).

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace syncd::server {

class HttpHealth {
 public:
  // What the endpoints report; each is called on the endpoint's thread.
  struct Endpoints {
    std::function<bool()> database_ready;
    std::function<int()> connections;       // open streams
    std::function<std::string()> stats;     // a JSON object
    std::function<std::string()> metrics;   // the text exposition
  };

  // Binds `listen` ("host:port"; port 0 picks one).
  static absl::StatusOr<std::unique_ptr<HttpHealth>> start(const std::string& listen,
                                                            const std::atomic<bool>& stopping,
                                                            Endpoints endpoints);
  ~HttpHealth();
  int port() const;

 private:
  struct Impl;
  explicit HttpHealth(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Splits "host:port" (also "[::1]:port"); nullopt-like error when malformed.
absl::StatusOr<std::pair<std::string, int>> split_host_port(const std::string& listen);

}  // namespace syncd::server
