#pragma once
// One sync.v1 Session stream to syncd, on behalf of one WebSocket.
//
// gRPC's callback reactor runs on gRPC's threads and lives until OnDone;
// the WebSocket session lives on its Asio strand. They meet here:
// UpstreamSession is shared by both, and every call into the reactor checks,
// under one mutex, that the call has not ended. Messages from syncd go to
// the Listener (on a gRPC thread); it must not block, and may ask to pause
// reading (backpressure) until it calls resume().
//
// The stream is raw (grpc::ByteBuffer through the generic stub): a
// broadcast reaches the listener as its encoded patch and version, so the
// bridge decodes each patch once for all its sockets, not once per socket.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <string_view>

#include <deque>
#include <memory>
#include <mutex>

#include "api/grpc.h"

namespace bridge::upstream {

class Listener {
 public:
  virtual ~Listener() = default;
  // Return false to pause reading from syncd until resume().
  // Every message but a broadcast, decoded.
  virtual bool on_upstream_message(const api::SessionResponse& msg) = 0;
  // A broadcast: the encoded Patch (valid during the call) and its version.
  virtual bool on_upstream_broadcast(std::int64_t version, std::string_view patch) = 0;
  // The stream ended; nothing more will arrive.
  virtual void on_upstream_done(const grpc::Status& status) = 0;
  // After send() returned false: the write queue has drained.
  virtual void on_upstream_drained() = 0;
};

class UpstreamSession : public std::enable_shared_from_this<UpstreamSession> {
 public:
  // Opens the stream and sends `open`. `listener` is held weakly.
  static std::shared_ptr<UpstreamSession> start(grpc::GenericStub& stub, const api::OpenChannel& open,
                                                const std::string& authorization,
                                                std::weak_ptr<Listener> listener);
  ~UpstreamSession();

  // Messages queued for syncd before send() asks the caller to wait.
  static constexpr std::size_t kMaxQueuedWrites = 256;

  // Thread-safe; no-ops once the stream has ended. Returns false when the
  // queue toward syncd is full: stop producing until on_upstream_drained().
  bool send(api::SessionRequest msg);
  void resume();
  void cancel();

 private:
  class Reactor;
  UpstreamSession() = default;

  std::mutex mu_;
  Reactor* reactor_ = nullptr;  // guarded by mu_; null once OnDone ran
};

}  // namespace bridge::upstream
