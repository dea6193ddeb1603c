#include "server/http_health.h"

#include <spdlog/spdlog.h>

#include "observe/exposition.h"
#include "observe/health.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <string_view>
#include <thread>

namespace syncd::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

absl::StatusOr<std::pair<std::string, int>> split_host_port(const std::string& listen) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError("\"" + listen + "\" is not HOST:PORT");
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  int port = -1;
  const char* first = listen.data() + colon + 1;
  const char* last = listen.data() + listen.size();
  const auto [ptr, ec] = std::from_chars(first, last, port);
  if (ec != std::errc() || ptr != last || port < 0 || port > 65535) {
    return absl::InvalidArgumentError("\"" + listen + "\" has no valid port");
  }
  return std::make_pair(host, port);
}

struct HttpHealth::Impl {
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  const std::atomic<bool>* stopping = nullptr;
  Endpoints endpoints;
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;  // the acceptor was closed: shutting down
      serve(std::make_shared<tcp::socket>(std::move(socket)));
      accept();
    });
  }

  // The answer to GET `path`: status, content type and body.
  void respond(std::string_view path, http::response<http::string_body>& response) {
    const bool stopped = stopping->load();
    response.set(http::field::content_type, "application/json");
    if (path == "/healthz") {
      response.result(stopped ? http::status::service_unavailable : http::status::ok);
      response.body() = stopped ? R"({"status":"stopping"})" : R"({"status":"serving"})";
    } else if (path == "/readyz") {
      const bool database = endpoints.database_ready();
      response.result(!stopped && database ? http::status::ok : http::status::service_unavailable);
      response.body() = stopped    ? R"({"status":"stopping"})"
                        : database ? R"({"status":"ready"})"
                                   : R"({"status":"not ready","reason":"the database is unreachable"})";
    } else if (path == "/health") {
      response.result(stopped ? http::status::service_unavailable : http::status::ok);
      response.body() = observe::health_json(stopped ? "stopping" : "ok", endpoints.connections());
    } else if (path == "/stats") {
      response.result(http::status::ok);
      response.body() = endpoints.stats();
    } else if (path == "/metrics") {
      response.result(http::status::ok);
      response.set(http::field::content_type, observe::kMetricsContentType);
      response.body() = endpoints.metrics();
      return;  // the exposition ends with its own newline
    } else {
      response.result(http::status::not_found);
      response.body() = R"({"error":"not found; try /health, /healthz, /readyz, /stats or /metrics"})";
    }
    response.body() += "\n";
  }

  void serve(std::shared_ptr<tcp::socket> socket) {
    auto buffer = std::make_shared<beast::flat_buffer>();
    auto parser = std::make_shared<http::request_parser<http::empty_body>>();
    parser->header_limit(8 << 10);
    http::async_read(*socket, *buffer, *parser,
                     [this, socket, buffer, parser](beast::error_code ec, std::size_t) {
                       if (ec) return;  // the client went away or sent garbage
                       const auto& request = parser->get();
                       auto response = std::make_shared<http::response<http::string_body>>();
                       response->version(request.version());
                       response->keep_alive(false);
                       const std::string_view target = request.target();
                       respond(target.substr(0, target.find('?')), *response);
                       response->prepare_payload();
                       http::async_write(*socket, *response,
                                         [socket, response](beast::error_code, std::size_t) {
                                           beast::error_code ignored;
                                           socket->shutdown(tcp::socket::shutdown_both, ignored);
                                         });
                     });
  }
};

absl::StatusOr<std::unique_ptr<HttpHealth>> HttpHealth::start(const std::string& listen,
                                                              const std::atomic<bool>& stopping,
                                                              Endpoints endpoints) {
  auto hp = split_host_port(listen);
  if (!hp.ok()) return hp.status();
  auto impl = std::make_unique<Impl>();
  impl->stopping = &stopping;
  impl->endpoints = std::move(endpoints);
  beast::error_code ec;
  const auto address = asio::ip::make_address(hp->first, ec);
  if (ec) return absl::InvalidArgumentError("\"" + hp->first + "\" is not an IP address");
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(hp->second));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError("cannot listen on " + listen + ": " + ec.message());
  impl->accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->ioc.run(); });
  return std::unique_ptr<HttpHealth>(new HttpHealth(std::move(impl)));
}

HttpHealth::HttpHealth(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpHealth::~HttpHealth() {
  asio::post(impl_->ioc, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->ioc.stop();
  });
  if (impl_->thread.joinable()) impl_->thread.join();
}

int HttpHealth::port() const { return impl_->acceptor.local_endpoint().port(); }

}  // namespace syncd::server
