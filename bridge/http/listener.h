#pragma once
// Accepts TCP connections and hands each to an HttpSession.

#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "ws/context.h"

namespace bridge {

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  // Throws boost::system::system_error when the address cannot be bound
  // (main() reports it and exits; no handler is running yet).
  Listener(boost::asio::io_context& ioc, boost::asio::ip::tcp::endpoint endpoint, BridgeContext& ctx);
  void run();
  void stop();  // stops accepting
  unsigned short port() const { return acceptor_.local_endpoint().port(); }

 private:
  void do_accept();

  boost::asio::io_context& ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  BridgeContext& ctx_;
};

}  // namespace bridge
