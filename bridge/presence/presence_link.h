#pragma once
// The bridge's part in presence: one sync.v1 Presence stream to syncd for
// the whole process. It announces every client socket (connect, state,
// position, disconnect) and watches the channels whose presence some
// socket asked for, keeping each such channel's list so a socket that asks
// later gets it at once. When the stream breaks it is opened again (with
// backoff) and everything is announced and watched again under the same
// ids: when the old syncd died, its rows (kept until its --presence-ttl)
// are taken over, so nobody flickers out; when only the stream broke,
// syncd removed the sockets and they join again.
// When the bridge dies, syncd sees the stream end and its members leave.
//
// State updates and positions are coalesced per socket (the latest
// wins); the rest is sent in order. Requests gather for kFlushDelay and go
// in one batch message, and each channel's events come back in batches. Listener callbacks run on gRPC
// threads or inside the caller: they must only post.
//
// Thread-safe.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "api/grpc.h"

namespace bridge::presence {

using Frame = std::shared_ptr<const std::string>;
using Frames = std::shared_ptr<const std::vector<Frame>>;

class Listener {
 public:
  virtual ~Listener() = default;
  // Presence frames of the JSON protocol (codec/presence_codec.h), in
  // order: those of one message from syncd (a round's events) together.
  virtual void on_presence_frames(Frames frames) = 0;
  // syncd refused something this socket asked (a bad state, a token that
  // may not read the channel, a clientId that is not its subject).
  virtual void on_presence_error(const std::string& code, const std::string& message) = 0;
};

class PresenceLink {
 public:
  // `authorization`: the bridge's own "Bearer <jwt>" (or empty), read at
  // each stream start.
  PresenceLink(std::shared_ptr<api::Sync::Stub> stub, std::function<std::string()> authorization);
  ~PresenceLink();

  // A new id for a socket's connection, unique among bridges.
  std::string next_id();
  void connect(const std::string& channel, const std::string& id, api::PresenceConnect connect,
               std::weak_ptr<Listener> listener);
  void set_state(const std::string& channel, const std::string& id, google::protobuf::Struct state);
  void position(const std::string& channel, const std::string& id, std::int64_t delivered, std::int64_t applied);
  void disconnect(const std::string& channel, const std::string& id);

  // The listener gets the channel's whole list (at once when known), then
  // every change.
  void subscribe(const std::string& channel, std::weak_ptr<Listener> listener);
  void unsubscribe(const std::string& channel, const Listener* listener);
  // The whole list, to this listener only (when known; else it follows).
  void request(const std::string& channel, const std::weak_ptr<Listener>& listener);

  std::size_t connections() const;

  // Requests sent in one message at most.
  static constexpr int kMaxBatch = 1024;
  // How long requests gather before they are sent together (syncd writes
  // presence in 50 ms rounds anyway).
  static constexpr std::chrono::milliseconds kFlushDelay{10};

 private:
  class Stream;
  using Key = std::pair<std::string, std::string>;  // channel, id
  // Hashes the id alone: ids are unique within the process, and share
  // their prefix (as a channel's keys share the channel), which made an
  // ordered map compare the same bytes at every step.
  struct KeyHash {
    std::size_t operator()(const Key& key) const { return std::hash<std::string>{}(key.second); }
  };
  struct Conn {
    api::PresenceConnect connect;  // with the latest state; without its channel and id (the key)
    std::int64_t delivered = 0;
    std::int64_t applied = 0;
    std::weak_ptr<Listener> listener;
  };
  struct Channel {
    std::vector<std::weak_ptr<Listener>> listeners;
    bool known = false;    // `list` holds syncd's current list
    api::PresenceList list;
  };

  void run();                                         // the reconnecting thread
  void enqueue(api::PresenceRequest r);               // requires mu_
  void pump();                                        // requires mu_
  void schedule_flush();                              // requires mu_
  void on_event(const api::PresenceEvent& event);
  // One event (not a batch) applied to its channel's list; returns its
  // frame for the listeners, or null when they hear nothing yet. Requires mu_.
  Frame apply(const api::PresenceEvent& event, Channel& ch);
  void on_error(const api::PresenceEvent& event);
  void on_write_done(Stream* s, bool ok);
  void on_read_side_done(Stream* s);
  void on_done(Stream* s, const grpc::Status& status);
  void send_to(const std::vector<std::weak_ptr<Listener>>& listeners, const Frames& frames);

  const std::shared_ptr<api::Sync::Stub> stub_;
  const std::function<std::string()> authorization_;
  // Prefixes socket ids: stable while the process lives, so syncd replaces a
  // re-announced socket's entry instead of listing it twice.
  const std::string process_id_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;                  // guarded by mu_
  Stream* stream_ = nullptr;               // guarded by mu_; the open stream, if any
  bool writing_ = false;                   // guarded by mu_; also while the call is being set up
  bool dead_ = false;                      // guarded by mu_; the open stream is ending: write nothing
  bool flush_scheduled_ = false;           // guarded by mu_; the timer thread will set flush_ready_
  bool flush_ready_ = false;               // guarded by mu_; states and positions may go now
  std::deque<api::PresenceRequest> out_;   // guarded by mu_; in order
  std::unordered_set<Key, KeyHash> sets_;  // guarded by mu_; after out_: sockets whose state changed
  std::unordered_map<Key, api::PresenceRequest, KeyHash> positions_;  // guarded by mu_; after sets_, likewise
  std::unordered_map<Key, Conn, KeyHash> conns_;  // guarded by mu_
  std::map<std::string, Channel> channels_;  // guarded by mu_
  std::uint64_t next_id_ = 0;              // guarded by mu_
  std::thread thread_;
};

}  // namespace bridge::presence
