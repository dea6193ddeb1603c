#pragma once
// sync-bridge's Prometheus metrics, served at GET /metrics on the bridge's
// port (see service/observe/metrics.h for the conventions: one
// process-wide registry, no channel names as labels, gauges that mirror a
// structure set just before each scrape).
//
// Thread-safe.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace bridge::observe {

class Metrics {
 public:
  static Metrics& get();

  // Transports: ws (/sync), crdt (/crdt), socketio (/socket.io/).
  prometheus::Gauge& connections(const char* transport);
  void refused(const char* reason);     // a connection refused at the door
  void auth_failed(const char* reason);  // unauthenticated, forbidden, malformed

  prometheus::Counter& messages_received;  // client frames and Socket.IO packets
  prometheus::Counter& messages_sent;
  prometheus::Counter& sent_bytes;
  prometheus::Counter& deliveries;  // patches sent to clients, live or read from the log
  prometheus::Counter& errors_sent;
  prometheus::Gauge& behind;        // subscribers catching up from the log
  prometheus::Counter& catchup_reads;
  prometheus::Counter& upstream_failures;  // calls to syncd that failed UNAVAILABLE or worse
  prometheus::Counter& patches_accepted;   // patches pushed for clients that syncd stored
  prometheus::Counter& rate_limited;       // patches syncd answered rate_limited
  prometheus::Gauge& presence_members;     // presence entries of this bridge's sockets
  prometheus::Gauge& upstream_up;          // set before each scrape

  std::string scrape() const;

 private:
  explicit Metrics(std::shared_ptr<prometheus::Registry> registry);
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>& connections_;
  prometheus::Family<prometheus::Counter>& refused_;
  prometheus::Family<prometheus::Counter>& auth_failures_;
};

}  // namespace bridge::observe
