#include "observe/metrics.h"

#include "observe/exposition.h"

#include <algorithm>

namespace syncd::observe {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;


prometheus::Counter& counter(prometheus::Registry& r, const char* name, const char* help) {
  return BuildCounter().Name(name).Help(help).Register(r).Add({});
}

prometheus::Gauge& gauge(prometheus::Registry& r, const char* name, const char* help,
                         const prometheus::Labels& labels = {}) {
  return BuildGauge().Name(name).Help(help).Register(r).Add(labels);
}

// Registered once; later calls get the same family (the registry merges).
prometheus::Family<Histogram>& stage_family(prometheus::Registry& r) {
  return BuildHistogram()
      .Name("syncd_patch_stage_seconds")
      .Help("A patch's time per stage: queue (waiting for its commit batch), commit (the batch's transaction), "
            "ack_write and broadcast_write (queued on a stream until written to the transport)")
      .Register(r);
}

}  // namespace

const Histogram::BucketBoundaries& latency_buckets() {
  static const Histogram::BucketBoundaries buckets{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,    0.25,  0.5,   1,     2.5,  5,     10};
  return buckets;
}

void LatencyBatch::add(double seconds) {
  const auto& bounds = latency_buckets();
  if (counts_.empty()) counts_.assign(bounds.size() + 1, 0);
  // The bucket Histogram::Observe would choose: the first bound >= the value (+Inf last).
  counts_[std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin()] += 1;
  sum_ += seconds;
}

void LatencyBatch::record(prometheus::Histogram& h) {
  if (counts_.empty()) return;
  h.ObserveMultiple(counts_, sum_);
  counts_.clear();
  sum_ = 0;
}

Metrics& Metrics::get() {
  static Metrics* metrics = new Metrics(std::make_shared<prometheus::Registry>());  // never destroyed: threads may outlive main
  return *metrics;
}

Metrics::Metrics(std::shared_ptr<prometheus::Registry> registry)
    : commit_batch_patches(BuildHistogram()
                               .Name("syncd_commit_batch_patches")
                               .Help("Patches per commit transaction (group commit)")
                               .Register(*registry)
                               .Add({}, Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024})),
      commit_seconds(BuildHistogram()
                         .Name("syncd_commit_seconds")
                         .Help("Time of one commit transaction, fsync included")
                         .Register(*registry)
                         .Add({}, latency_buckets())),
      ack_seconds(BuildHistogram()
                      .Name("syncd_ack_seconds")
                      .Help("Time from a patch reaching the committer to its ack (queue wait plus commit)")
                      .Register(*registry)
                      .Add({}, latency_buckets())),
      stage_queue(stage_family(*registry).Add({{"stage", "queue"}}, latency_buckets())),
      stage_commit(stage_family(*registry).Add({{"stage", "commit"}}, latency_buckets())),
      stage_ack_write(stage_family(*registry).Add({{"stage", "ack_write"}}, latency_buckets())),
      stage_broadcast_write(stage_family(*registry).Add({{"stage", "broadcast_write"}}, latency_buckets())),
      deliveries(counter(*registry, "syncd_deliveries_total",
                         "Patches sent to Session and Watch streams, live or read from the log")),
      sent_bytes(counter(*registry, "syncd_sent_bytes_total", "Bytes of messages written to streams")),
      catchup_reads(counter(*registry, "syncd_catchup_reads_total",
                            "Log reads for streams that fell behind the live feed")),
      log_reads(counter(*registry, "syncd_log_reads_total", "Reads of a page of a channel's log")),
      snapshot_reads(counter(*registry, "syncd_snapshot_reads_total",
                             "Snapshots read for clients whose position was compacted away")),
      compactions(counter(*registry, "syncd_compactions_total",
                          "Compactions (calls and retention passes) that moved a channel's horizon")),
      compacted_patches(counter(*registry, "syncd_compacted_patches_total", "Patches removed from the log")),
      last_compaction(gauge(*registry, "syncd_last_compaction_timestamp_seconds",
                            "Unix time of the last compaction that moved a horizon (0: none yet)")),
      retention_pass(gauge(*registry, "syncd_retention_pass_timestamp_seconds",
                           "Unix time this instance's last retention pass finished (0: none yet)")),
      retention_left(gauge(*registry, "syncd_retention_uncompacted_channels",
                           "Channels past their retention rule that the last pass could not compact")),
      presence_events(counter(*registry, "syncd_presence_events_total",
                              "Presence join, update and leave events sent to streams")),
      rate_limited(counter(*registry, "syncd_rate_limited_patches_total",
                           "Patches rejected because their sender was over its rate limit")),
      database_errors(counter(*registry, "syncd_database_errors_total",
                              "Failed connections and calls to PostgreSQL")),
      sessions(gauge(*registry, "syncd_streams", "Open streams by kind", {{"kind", "session"}})),
      watches(gauge(*registry, "syncd_streams", "Open streams by kind", {{"kind", "watch"}})),
      streams_behind(gauge(*registry, "syncd_streams_behind",
                           "Streams reading the log because they fell behind the live feed")),
      presence_local(gauge(*registry, "syncd_presence_local_members",
                           "Presence entries of connections to this instance")),
      presence_members(gauge(*registry, "syncd_presence_members",
                             "Presence entries of every instance, in channels this instance serves")),
      database_up(gauge(*registry, "syncd_database_up", "1 when PostgreSQL answers, 0 during an outage")),
      registry_(std::move(registry)),
      patches_accepted_(counter(*registry_, "syncd_patches_accepted_total", "Patches stored (acked accepted)")),
      patches_ignored_(counter(*registry_, "syncd_patches_ignored_total",
                               "Patches acked ignored: the channel already held their id")),
      patches_rejected_(BuildCounter()
                            .Name("syncd_patches_rejected_total")
                            .Help("Patches acked rejected, by code")
                            .Register(*registry_)),
      auth_failures_(BuildCounter()
                         .Name("syncd_auth_failures_total")
                         .Help("Calls refused for their token, by reason")
                         .Register(*registry_)) {
  gauge(*registry_, "syncd_build_info", "Always 1; the version is a label", {{"version", SYNC_VERSION}}).Set(1);
}

void Metrics::rejected(const std::string& code) {
  patches_rejected_.Add({{"code", code.empty() ? "unknown" : code}}).Increment();
}

void Metrics::auth_failed(const char* reason) { auth_failures_.Add({{"reason", reason}}).Increment(); }

std::string Metrics::scrape() const {
  return exposition(*registry_);
}

}  // namespace syncd::observe
