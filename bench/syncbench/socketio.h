#pragma once
// syncbench's Socket.IO client side, over a WsConn on
// /socket.io/?EIO=4&transport=websocket: after the open packet (the
// connection's first frame) the caller sends "40"; socketio_control then
// joins `channel` once the namespace is connected (ack id 0), answers the
// server's pings, and reports the join's answer through `ready`.

#include <functional>
#include <string>
#include <string_view>

#include "ws_conn.h"

namespace syncbench {

inline constexpr const char* kSocketIoTarget = "/socket.io/?EIO=4&transport=websocket";

// True when `frame` was one of these (the caller ignores it).
inline bool socketio_control(WsConn& conn, std::string_view frame, const std::string& channel,
                             const std::function<void(bool)>& ready) {
  if (frame == "2") {
    conn.send("3");
  } else if (frame.substr(0, 3) == "40{") {
    conn.send(R"(420["sync:join",{"channel":")" + channel + "\"}]");
  } else if (frame.substr(0, 3) == "430") {
    ready(frame.find("\"success\":true") != std::string_view::npos);
  } else if (frame.substr(0, 2) == "44") {
    ready(false);
  } else {
    return false;
  }
  return true;
}

}  // namespace syncbench
