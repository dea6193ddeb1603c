#pragma once
// The WebSocket transport of an Engine.IO session: one packet per text
// message. Either the session starts on it (transport=websocket, no sid:
// the open packet goes first), or it upgrades a polling session: the
// client probes ("2probe" -> "3probe"), then sends the upgrade packet, and
// from then on the session's packets go here.
//
// Packets leave through a CoalescingStream (ws/coalescing_stream.h), framed
// here, so a backlog leaves in few system calls. Reads are paced by
// --max-read-rate. Once attached, the session's heartbeat watches for
// silence; before, a socket that has not upgraded within kUpgradeTimeout
// is closed. Runs on the connection's strand.

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <memory>

#include "socketio/eio_session.h"
#include "ws/coalescing_stream.h"
#include "ws/read_rate.h"

namespace bridge::socketio {

class EioWebSocket final : public EioTransport, public std::enable_shared_from_this<EioWebSocket> {
 public:
  static constexpr std::chrono::seconds kUpgradeTimeout{10};

  EioWebSocket(boost::beast::tcp_stream&& stream, BridgeContext& ctx);

  // `session`: the polling session to upgrade; null starts a new session
  // with `handshake`.
  void run(boost::beast::http::request<boost::beast::http::string_body> req, std::shared_ptr<EioSession> session,
           Handshake handshake);

  void write(std::vector<Frame> frames) override;
  void close() override;

 private:
  struct Out {
    Frame frame;
    bool ends_batch;  // the session hears written() once it is out
  };

  void on_accept(boost::beast::error_code ec);
  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  void on_packet(std::string packet);
  void queue(Frame frame, bool ends_batch);
  void write_out();
  void finish();

  BridgeContext& ctx_;
  boost::beast::websocket::stream<CoalescingStream> ws_;
  boost::beast::flat_buffer buffer_;
  boost::asio::steady_timer read_timer_;
  boost::asio::steady_timer upgrade_timer_;
  ReadRate read_rate_;
  std::shared_ptr<EioSession> session_;
  Handshake handshake_;
  bool attached_ = false;  // the session's packets go here
  bool probed_ = false;    // the client probed this socket for an upgrade
  std::deque<Out> out_;        // not yet taken by the stream
  bool waiting_room_ = false;  // the stream is full; it calls write_out() when not
  bool closed_ = false;
};

}  // namespace bridge::socketio
