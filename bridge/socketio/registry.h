#pragma once
// The open Engine.IO sessions by sid: a polling client's requests and its
// upgrade find their session here, and the registry owns each session
// until it ends. Thread-safe.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "socketio/handshake.h"

namespace bridge {
struct BridgeContext;
}

namespace bridge::socketio {

class EioSession;

// 20 characters of [A-Za-z0-9_-] from the kernel's CSPRNG: a sid, or the
// private id that connection state recovery presents.
std::string random_id();

class Registry {
 public:
  explicit Registry(boost::asio::io_context& ioc) : ioc_(ioc) {}

  // A new session with an unguessable sid, on `strand` (a WebSocket's), or
  // on a strand of its own.
  std::shared_ptr<EioSession> create(BridgeContext& ctx, Handshake handshake,
                                     boost::asio::any_io_executor strand = {});
  std::shared_ptr<EioSession> find(const std::string& sid);
  void remove(const std::string& sid);
  // Ends every session (shutdown).
  void close_all();

 private:
  boost::asio::io_context& ioc_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<EioSession>> sessions_;  // guarded by mu_
};

}  // namespace bridge::socketio
