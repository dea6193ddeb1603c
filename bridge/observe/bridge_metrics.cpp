#include "observe/bridge_metrics.h"

#include "observe/exposition.h"

namespace bridge::observe {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;

prometheus::Counter& counter(prometheus::Registry& r, const char* name, const char* help) {
  return BuildCounter().Name(name).Help(help).Register(r).Add({});
}

prometheus::Gauge& gauge(prometheus::Registry& r, const char* name, const char* help) {
  return BuildGauge().Name(name).Help(help).Register(r).Add({});
}

}  // namespace

Metrics& Metrics::get() {
  static Metrics* metrics = new Metrics(std::make_shared<prometheus::Registry>());  // never destroyed: threads may outlive main
  return *metrics;
}

Metrics::Metrics(std::shared_ptr<prometheus::Registry> r)
    : messages_received(counter(*r, "sync_bridge_messages_received_total", "Frames and Socket.IO packets from clients")),
      messages_sent(counter(*r, "sync_bridge_messages_sent_total", "Frames and Socket.IO packets sent to clients")),
      sent_bytes(counter(*r, "sync_bridge_sent_bytes_total", "Bytes of messages sent to clients")),
      deliveries(counter(*r, "sync_bridge_deliveries_total",
                         "Patches sent to clients (broadcasts and history), counted per client")),
      errors_sent(counter(*r, "sync_bridge_errors_sent_total", "Error messages sent to clients")),
      behind(gauge(*r, "sync_bridge_subscribers_behind",
                   "Client subscriptions catching up from the log after falling behind the live feed")),
      catchup_reads(counter(*r, "sync_bridge_catchup_reads_total",
                            "Log reads (GetChanges) for subscriptions that fell behind")),
      upstream_failures(counter(*r, "sync_bridge_upstream_failures_total",
                                "Calls to syncd that ended UNAVAILABLE, DEADLINE_EXCEEDED or INTERNAL")),
      patches_accepted(counter(*r, "sync_bridge_patches_accepted_total",
                               "Patches pushed for clients that syncd stored (acked accepted)")),
      rate_limited(counter(*r, "sync_bridge_rate_limited_patches_total",
                           "Patches syncd rejected because their sender was over its rate limit")),
      presence_members(gauge(*r, "sync_bridge_presence_members", "Presence entries of this bridge's connections")),
      upstream_up(gauge(*r, "sync_bridge_upstream_up", "1 when the gRPC connection to syncd is ready")),
      registry_(std::move(r)),
      connections_(BuildGauge().Name("sync_bridge_connections").Help("Open client connections by transport").Register(*registry_)),
      refused_(BuildCounter()
                   .Name("sync_bridge_refused_connections_total")
                   .Help("Connections refused before they opened, by reason")
                   .Register(*registry_)),
      auth_failures_(BuildCounter()
                         .Name("sync_bridge_auth_failures_total")
                         .Help("Connections and calls refused for their token, by reason")
                         .Register(*registry_)) {
  for (const char* t : {"ws", "crdt", "socketio"}) connections_.Add({{"transport", t}});
  BuildGauge()
      .Name("sync_bridge_build_info")
      .Help("Always 1; the version is a label")
      .Register(*registry_)
      .Add({{"version", SYNC_VERSION}})
      .Set(1);
}

prometheus::Gauge& Metrics::connections(const char* transport) { return connections_.Add({{"transport", transport}}); }

void Metrics::refused(const char* reason) { refused_.Add({{"reason", reason}}).Increment(); }

void Metrics::auth_failed(const char* reason) { auth_failures_.Add({{"reason", reason}}).Increment(); }

std::string Metrics::scrape() const { return syncd::observe::exposition(*registry_); }

}  // namespace bridge::observe
