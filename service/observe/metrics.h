#pragma once
// syncd's Prometheus metrics: one process-wide registry, served at
// GET /metrics (server/http_health.h) in the text exposition format.
//
// Counters and histograms are updated where the event happens; gauges that
// mirror a structure (subscribers behind, presence, the database) are set
// from it by the server just before each scrape, so they cannot drift.
// Channel names are never labels: their number is unbounded. Per-channel
// figures come from GET /stats and GetChannelInfo.
//
// Thread-safe: every metric may be updated from any thread.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

namespace syncd::observe {

// The buckets of every latency histogram here: 0.5 ms to 10 s.
const prometheus::Histogram::BucketBoundaries& latency_buckets();

// Latencies gathered, then recorded into a histogram with latency_buckets()
// under one lock (Histogram::Observe takes the histogram's mutex each time):
// the messages of one write, say.
class LatencyBatch {
 public:
  void add(double seconds);
  void record(prometheus::Histogram& h);  // and starts over

 private:
  std::vector<double> counts_;  // per bucket, +Inf last; empty until the first add
  double sum_ = 0;
};

class Metrics {
 public:
  // The process's metrics, registered on first use.
  static Metrics& get();

  // Acks, as the client sees them.
  void accepted() { patches_accepted_.Increment(); }
  void ignored() { patches_ignored_.Increment(); }
  void rejected(const std::string& code);  // code: invalid_patch, conflict, ...
  void auth_failed(const char* reason);    // reason: expired, bad_signature, ...

  prometheus::Histogram& commit_batch_patches;
  prometheus::Histogram& commit_seconds;
  prometheus::Histogram& ack_seconds;  // a patch's wait in the committer, queue to ack
  // Where a patch's time goes, per stage (syncd_patch_stage_seconds):
  // waiting for its commit batch to start, the batch's commit, then its
  // ack and each broadcast of it from being queued on a stream to written.
  prometheus::Histogram& stage_queue;
  prometheus::Histogram& stage_commit;
  prometheus::Histogram& stage_ack_write;
  prometheus::Histogram& stage_broadcast_write;
  prometheus::Counter& deliveries;     // patches written to streams (live and from the log)
  prometheus::Counter& sent_bytes;     // every message written to a stream
  prometheus::Counter& catchup_reads;  // log reads for a stream that fell behind
  prometheus::Counter& log_reads;      // every read of a page of the log
  prometheus::Counter& snapshot_reads;
  prometheus::Counter& compactions;
  prometheus::Counter& compacted_patches;
  prometheus::Gauge& last_compaction;  // Unix time of the last compaction that moved the horizon
  prometheus::Gauge& retention_pass;   // Unix time the last retention pass finished
  prometheus::Gauge& retention_left;   // channels past their rule that the last pass could not compact
  prometheus::Counter& presence_events;  // join, update and leave events sent to subscribers
  prometheus::Counter& rate_limited;
  prometheus::Counter& database_errors;  // failed connects and calls to PostgreSQL

  prometheus::Gauge& sessions;  // open Session streams
  prometheus::Gauge& watches;   // open Watch streams

  // Set before each scrape.
  prometheus::Gauge& streams_behind;
  prometheus::Gauge& presence_local;  // presence entries of this instance's connections
  prometheus::Gauge& presence_members;  // every instance's, as this instance knows them
  prometheus::Gauge& database_up;

  // The registry in Prometheus text format.
  std::string scrape() const;

 private:
  Metrics(std::shared_ptr<prometheus::Registry> registry);
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Counter& patches_accepted_;
  prometheus::Counter& patches_ignored_;
  prometheus::Family<prometheus::Counter>& patches_rejected_;
  prometheus::Family<prometheus::Counter>& auth_failures_;
};

}  // namespace syncd::observe
