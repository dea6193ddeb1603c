#pragma once
// A small HTTP/1.1 endpoint beside the gRPC port: GET /healthz answers
// 200 while the server serves and 503 once it is stopping. Runs its own
// thread.

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace syncd::server {

class HttpHealth {
 public:
  // Binds `listen` ("host:port"; port 0 picks one).
  static absl::StatusOr<std::unique_ptr<HttpHealth>> start(const std::string& listen,
                                                            const std::atomic<bool>& stopping);
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
