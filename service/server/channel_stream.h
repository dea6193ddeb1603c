#pragma once
// What one streaming call (Session or Watch) owes its client: the channel's
// patches after a version, in order, each once, plus acks and heartbeats,
// through a bounded write queue.
//
// The part of a call that outlives gRPC's reactor callbacks: commits and log
// reads finish on other threads and hold a shared_ptr to it. The reactor
// forwards its write completions here and calls detach() in OnDone. All
// state is guarded by one mutex; the Writer is called with it held.
//
// Delivery, per engine::Cursor: a live patch is written straight from the
// commit when it is the next version and fewer than `queue_messages`
// messages wait; otherwise the stream falls behind and reads pages from the
// log (one read at a time, only while the queue is less than half full)
// until it reaches the head again. A read that finds its versions compacted
// away gets the channel's snapshot instead (see store::Snapshot), marked so
// the client replaces its state, then the log after it: a client however
// far behind gets back in step on the same path. So a slow reader costs a
// bounded queue and some log reads, never unbounded memory, and is not
// disconnected; a snapshot costs the state's size while it is written.

#include <chrono>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include <boost/container/deque.hpp>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include "api/messages.h"
#include "engine/cursor.h"
#include "engine/hub.h"
#include "engine/reader_pool.h"

namespace syncd::server {

struct StreamLimits {
  std::size_t page_patches = 1000;      // patches per sync_state page and log read
  std::size_t page_bytes = 1 << 20;     // about this many bytes per page
  std::size_t queue_messages = 256;     // broadcasts and pages waiting before falling behind
  std::size_t unacked_patches = 1024;   // per session; reading pauses beyond it
  std::chrono::milliseconds idle_timeout{60'000};       // sessions only; 0 = never
  std::chrono::milliseconds heartbeat_interval{15'000};  // sessions only
};

class ChannelStream final : public engine::Subscriber,
                            public std::enable_shared_from_this<ChannelStream> {
 public:
  // How history reaches the client: sync_state pages then broadcasts
  // (Session), or broadcasts only (Watch).
  enum class Kind { kSession, kWatch };

  class Writer {
   public:
    virtual ~Writer() = default;
    // StartWrite of `msg` (an encoded SessionResponse, or Patch for Watch),
    // which stays alive until on_write_done.
    virtual void start_write(const grpc::ByteBuffer& msg) = 0;
    virtual void finish(const grpc::Status& status) = 0;
    // Sessions: resume reading client messages (see pause_reading()).
    virtual void resume_reading() = 0;
  };

  ChannelStream(Kind kind, engine::ReaderPool& readers, StreamLimits limits, Writer* writer);
  ~ChannelStream() override;

  // The id commits carry as their origin, so they are not echoed back.
  std::uint64_t id() const { return reinterpret_cast<std::uint64_t>(this); }

  // Names the channel; once, before the stream joins the hub. `batch`
  // (sessions that asked for it): messages queued behind the one being
  // written go together in one SessionResponse{batch}.
  void bind(std::string channel, bool batch = false);
  const std::string& channel() const { return channel_; }

  // Delivery begins after `from`; `head` is the channel's head, read after
  // the stream joined the hub.
  void start(std::int64_t from, std::int64_t head);

  // Queues a message (ack, opened, error) regardless of the queue limit:
  // its count is bounded by the unacked-patch window.
  void send(api::SessionResponse msg);
  // Queues a message only while fewer than `queue_messages` wait (presence
  // events); false when it was dropped.
  bool offer(api::SessionResponse msg);
  // The last version sent or queued to the client.
  std::int64_t delivered() const;
  // Runs `f` once the history after `open` is queued (now, if it is).
  // `f` runs with the stream's lock held: it must not call the stream.
  void after_history(std::function<void()> f);
  // Called once a second with delivered(); set before the stream joins
  // the hub.
  void on_tick(std::function<void(std::int64_t)> f) { on_tick_ = std::move(f); }
  // Answers sync_state pages of the log after `from`, up to the head.
  void request_sync(std::int64_t from, std::size_t limit);

  // Session flow control: a patch went to the committer / came back.
  // Returns false when the session should stop reading until resumed.
  bool patch_sent(const api::Patch& patch);
  void patch_answered(const api::Ack& ack);

  void touch();  // the client sent something
  // The caller's token stops being valid then (none: never); the stream is
  // closed UNAUTHENTICATED at the next tick after it. A refresh moves it.
  void set_expiry(std::optional<std::chrono::system_clock::time_point> expires);
  // Finish with `status` once queued messages are written (and, when
  // `drain`, once every patch sent has its ack).
  void close(const grpc::Status& status, bool drain);

  // Reactor callbacks.
  void on_write_done(bool ok);
  void detach();

  // engine::Subscriber
  void on_commit(const std::vector<engine::Published>& patches) override;
  void on_remote_head(std::int64_t head) override;
  void tick(std::chrono::steady_clock::time_point now) override;
  void shut_down() override;
  void on_deleted() override;
  bool behind() const override;

 private:
  enum class Mode { kPending, kHistory, kLive };
  enum class ReadKind { kCatchUp, kSync };

  struct Out {
    Out(grpc::ByteBuffer m) : msg(std::move(m)) {}  // implicit: most messages are not timed
    enum class Timed : std::uint8_t { kNo, kAck, kBroadcast };
    grpc::ByteBuffer msg;
    // Acks and live broadcasts: when they were queued (their time to the
    // transport is a stage of syncd_patch_stage_seconds).
    Timed timed = Timed::kNo;
    std::chrono::steady_clock::time_point since{};
  };

  void pump();        // requires mu_
  void maybe_read();  // requires mu_
  void start_read(ReadKind kind, std::int64_t after, std::size_t limit, std::size_t bytes);  // requires mu_
  void on_page(ReadKind kind, std::int64_t after, absl::StatusOr<store::Page> page);
  // The versions asked for are compacted (or past the head): the client
  // gets the state instead, then what follows it.
  void start_snapshot(ReadKind kind);                                       // requires mu_
  void on_snapshot(ReadKind kind, absl::StatusOr<store::Snapshot> snapshot);
  void enqueue_snapshot(ReadKind kind, const store::Snapshot& snapshot);   // requires mu_
  void fail_read(const absl::Status& status);                               // requires mu_
  void enqueue_patch(const store::StoredPatch& p);  // requires mu_
  void maybe_resume();                           // requires mu_
  void went_live();                              // requires mu_; mode_ is now kLive
  bool flow_open() const;                        // requires mu_
  bool is_own(const store::StoredPatch& p) const;  // requires mu_

  // History is read this many pages at a time (and sent page by page).
  static constexpr std::size_t kPagesPerRead = 4;
  // A batch of queued messages stays under this many bytes (well under a
  // client's 4 MiB receive limit; a larger message goes alone).
  static constexpr std::size_t kMaxBatchBytes = 1 << 20;

  // Drops every queued message not being written.
  void drop_unwritten();  // requires mu_
  // Queues an ack or live broadcast, noting when (see Out).
  void timed(grpc::ByteBuffer msg, Out::Timed kind, std::chrono::steady_clock::time_point now);  // requires mu_
  // The write of the first written_ messages is done: their stage times.
  void observe_written();  // requires mu_

  const Kind kind_;
  std::string channel_;  // constant after bind()
  bool batch_ = false;   // guarded by mu_
  std::function<void(std::int64_t)> on_tick_;  // constant once ticking
  std::function<void()> after_history_;        // guarded by mu_
  engine::ReaderPool& readers_;
  const StreamLimits limits_;

  mutable std::mutex mu_;
  Writer* writer_;                      // null after detach()
  // Encoded messages; the first `written_` are being written (as one
  // batch_out_ when more than one). A live
  // broadcast's bytes are shared by every subscriber of the channel (encoded
  // once per patch by the committer). Boost's deque allocates nothing
  // while empty (std::deque takes ~600 B up front), which idle sessions are.
  boost::container::deque<Out> queue_;
  bool writing_ = false;
  std::size_t written_ = 0;  // queued messages the write in flight holds
  grpc::ByteBuffer batch_out_;
  Mode mode_ = Mode::kPending;
  engine::Cursor cursor_{0};
  // This session's own patches, never to be sent back to it. A log read
  // can see one of them committed before its ack reaches us, so patches in
  // flight are known by id (and client id) until their ack gives the version.
  std::unordered_multimap<std::string, std::string> in_flight_;  // id -> client id
  std::set<std::int64_t> own_versions_;  // accepted, not yet passed by the cursor
  std::optional<std::chrono::system_clock::time_point> expires_;
  bool reading_ = false;
  // A live patch found the queue full, so this stream reads the log until
  // its cursor is back at the head: behind() for syncd_streams_behind, and
  // the reads syncd_catchup_reads_total counts (a first read of history,
  // or of a commit on another instance, is not one).
  bool overflowed_ = false;
  bool snapshot_due_ = false;  // started past the head: a snapshot comes first
  bool sync_pending_ = false;
  std::int64_t sync_from_ = 0;
  std::size_t sync_limit_ = 0;
  std::size_t unacked_ = 0;
  bool paused_ = false;
  bool closing_ = false;
  bool drain_ = false;
  bool finished_ = false;
  grpc::Status status_;
  std::chrono::steady_clock::time_point last_activity_;
  std::chrono::steady_clock::time_point last_heartbeat_;
};

}  // namespace syncd::server
