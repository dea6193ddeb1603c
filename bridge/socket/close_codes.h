#pragma once
// How a failed call reaches a WebSocket client: a PROTOCOL.md error code
// for the error frame, and the close code when the socket must end. 1013
// ("try again later") for anything a retry can fix.

#include <boost/beast/websocket/rfc6455.hpp>
#include <grpcpp/support/status.h>

namespace bridge {

struct Ending {
  const char* code;
  boost::beast::websocket::close_code close;
};

Ending ending_for(grpc::StatusCode code);

}  // namespace bridge
