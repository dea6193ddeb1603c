#pragma once
// One Engine.IO v4 session (its sid): the packets queued for the client,
// the transport that carries them (long-polling HTTP requests, then a
// WebSocket once the client upgrades, or a WebSocket from the start), and
// the heartbeat (a ping every ping interval; no pong within the ping
// timeout ends the session). What the packets mean is the Socket.IO
// layer's business (socketio/sio_socket.h).
//
// Bounded whatever the client does: delivery stops feeding a client that
// does not take its packets at the queue limit (and catches it up from the
// log later); answers to the client's own packets (pongs, acks, errors)
// end the session once the queue limit of them wait unread.
// A polling response carries at most maxPayload bytes; POST bodies are
// paced by --max-read-rate (the "ok" waits), one at a time.
//
// Runs on its strand. The public methods are thread-safe (they post),
// except those marked "on the strand".

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/container/deque.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "delivery/feed_link.h"
#include "dialect/dialect.h"
#include "socketio/handshake.h"
#include "ws/context.h"
#include "ws/read_rate.h"

namespace bridge::socketio {

using Frame = dialect::Frame;

// The WebSocket under a session, as the session sees it (an interface, so
// the session does not depend on the Beast stream type).
class EioTransport {
 public:
  virtual ~EioTransport() = default;
  // Writes each frame as a text message, then calls the session's written().
  virtual void write(std::vector<Frame> frames) = 0;
  virtual void close() = 0;
};

class SioSocket;

class EioSession : public std::enable_shared_from_this<EioSession> {
 public:
  // Answers one polling request (thread-safe; runs on the request's strand).
  using Respond = std::function<void(boost::beast::http::status, std::string body)>;

  static constexpr int kPingIntervalMs = 25000;
  static constexpr int kPingTimeoutMs = 20000;

  EioSession(boost::asio::any_io_executor strand, BridgeContext& ctx, std::string sid, Handshake handshake);
  ~EioSession();

  const std::string& sid() const { return sid_; }
  // The open packet, answered to the handshake request or written first on a WebSocket.
  std::string open_packet(bool upgrades) const;
  // Starts the session (once it is owned by a shared_ptr); with `ws`, on
  // that WebSocket from the start.
  void start(std::shared_ptr<EioTransport> ws);

  // Long-polling.
  void poll(Respond respond);
  void post_body(std::string body, Respond respond);
  // The upgrade: a WebSocket answered the probe (the pending poll ends with
  // a noop), then the client's upgrade packet switches to it. A probe
  // WebSocket that goes away before that leaves the session on polling.
  void probed();
  void probe_failed();
  void upgrade(std::shared_ptr<EioTransport> ws);
  // From the WebSocket.
  void receive(std::string packet);
  void written();
  void transport_closed();
  // Closes the session (shutdown).
  void close(std::string why);

  // On the strand: for the Socket.IO layer. `answer`: the client's own
  // packets asked for it (bounded by ending the session), else delivery
  // sent it (bounded by delivery).
  void send(Frame packet, bool answer);
  std::size_t backlog() const { return queue_.size(); }
  // Ends the session at once; what is queued is dropped.
  void end(std::string why);
  // Ends the session once what is queued (and a close packet) has gone out,
  // or after a few seconds.
  void end_after_flush(std::string why);
  // Runs a function on the strand, keeping the session alive until it has
  // run, or drops it once the session is gone. Holds only a weak reference.
  delivery::Post strand_post();
  BridgeContext& context() { return ctx_; }
  const boost::asio::any_io_executor& strand() const { return strand_; }

 private:
  void on_packet(std::string_view packet);
  void flush();
  Frame pop();
  void ping(int after_ms);
  void await_pong();
  void answer_poll(boost::beast::http::status status, std::string body);

  BridgeContext& ctx_;
  boost::asio::any_io_executor strand_;
  const std::string sid_;
  Handshake handshake_;  // until start() hands it to the Socket.IO layer
  boost::asio::steady_timer ping_timer_;
  boost::asio::steady_timer post_timer_;  // a POST's "ok", when over the read rate
  ReadRate read_rate_;
  std::unique_ptr<SioSocket> sio_;

  struct Queued {
    Frame frame;
    bool answer;
  };
  boost::container::deque<Queued> queue_;
  std::size_t answers_ = 0;  // answers in queue_
  Respond poll_;                          // a GET waiting for packets
  bool posting_ = false;                  // a POST is being answered
  std::shared_ptr<EioTransport> ws_;      // once upgraded
  bool ws_writing_ = false;
  bool upgrading_ = false;                // probed: polls get a noop until the upgrade
  bool awaiting_pong_ = false;
  bool closed_ = false;
  std::optional<std::string> closing_;    // why, once end_after_flush() was called
  bool drain_posted_ = false;
};

}  // namespace bridge::socketio
