#include "http/listener.h"

#include <spdlog/spdlog.h>

#include <boost/asio/strand.hpp>

#include "http/http_session.h"

namespace bridge {

namespace net = boost::asio;

Listener::Listener(net::io_context& ioc, net::ip::tcp::endpoint endpoint, BridgeContext& ctx)
    : ioc_(ioc), acceptor_(net::make_strand(ioc)), ctx_(ctx) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(net::socket_base::max_listen_connections);
}

void Listener::run() { do_accept(); }

void Listener::stop() {
  net::post(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
  });
}

void Listener::do_accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [self = shared_from_this()](boost::system::error_code ec,
                                                                             net::ip::tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;  // stopped
    if (ec) {
      // Out of file descriptors and the like: say so, keep accepting.
      spdlog::warn("accept failed: {}", ec.message());
    } else {
      std::make_shared<HttpSession>(std::move(socket), self->ctx_)->run();
    }
    self->do_accept();
  });
}

}  // namespace bridge
