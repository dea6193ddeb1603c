// libFuzzer target: the bridge's front door. Any bytes as an HTTP request,
// parsed under the bridge's limits; an upgrade request becomes the socket's
// parameters exactly as a real socket's would. Whatever the bridge would
// send upstream must be legal gRPC metadata (gRPC aborts the process on
// anything else) and a token of a JWT's syntax, the channel a name syncd accepts,
// and the echoed subprotocol an HTTP token.

#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "auth/token_format.h"
#include "graph/check.h"
#include "http/http_session.h"
#include "ws/token_claims.h"
#include "ws/ws_session.h"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 << 10);
  parser.body_limit(16 << 10);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_header_done()) return 0;
  const auto& req = parser.get();
  if (!boost::beast::websocket::is_upgrade(req)) return 0;
  const bridge::SocketParams p = bridge::socket_params(req);
  if (!syncd::auth::legal_metadata_value(p.authorization)) std::abort();
  if (!p.authorization.empty()) {
    if (!p.auth_error.empty()) std::abort();  // a token is either taken or refused
    if (!syncd::auth::bearer_token(p.authorization).ok()) std::abort();
    (void)bridge::read_claims(p.authorization);
  }
  if (p.error.empty() && !syncd::graph::valid_channel_name(p.channel)) std::abort();  // syncd's rule
  for (char c : p.subprotocol) {
    if (c <= 0x20 || c >= 0x7f) std::abort();
  }
  if (p.since < 0) std::abort();
  return 0;
}
