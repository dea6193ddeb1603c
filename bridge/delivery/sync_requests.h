#pragma once
// A client's sync requests (a JSON sync_request, a CRDT pull): the log
// from a version, page by page, marked `requested`, beside live delivery.
//
// One request runs at a time; a newer one replaces one not yet started
// (the client wants the log from its latest position). The next page is
// asked for only while the client's queue is under half its limit. Pages
// the log no longer holds come as the channel's state (a snapshot) when
// the dialect has snapshots, else from the compaction horizon on.
//
// Not thread-safe: the socket's strand owns it.

#include <cstdint>
#include <string>

#include "delivery/sink.h"
#include "delivery/upstream.h"

namespace bridge::delivery {

class SyncRequests {
 public:
  SyncRequests(const std::string& channel, bool snapshots, std::size_t queue_limit, Upstream& upstream, Sink& sink)
      : channel_(channel), snapshots_(snapshots), queue_limit_(queue_limit), upstream_(upstream), sink_(sink) {}

  void request(std::int64_t from, int limit);
  // Serves a pending request if the queue allows; call when it drains.
  void next();
  void stop() { stopped_ = true; }
  // A request waits for the queue to drain.
  bool waiting() const { return pending_; }

 private:
  void on_page(const grpc::Status& status, api::GetChangesResponse& page);
  void read_snapshot();
  void skip_compacted();
  void fail(const grpc::Status& status);

  const std::string& channel_;
  const bool snapshots_;
  const std::size_t queue_limit_;
  Upstream& upstream_;
  Sink& sink_;
  bool stopped_ = false;
  bool pending_ = false;
  bool running_ = false;
  std::int64_t from_ = 0;
  int limit_ = 0;
};

}  // namespace bridge::delivery
