#pragma once
// What the bridge knows of a Socket.IO client from its first HTTP request.

#include <string>

#include "auth/keyed_cap.h"

namespace bridge::socketio {

struct Handshake {
  std::string authorization;  // "Bearer <jwt>" from the Authorization header or ?token=, syntax checked
  std::string auth_error;     // a malformed token there
  std::string address;        // the client's IP address
  syncd::auth::KeyedCap::Hold address_hold;  // its place under --max-sockets-per-address
};

}  // namespace bridge::socketio
