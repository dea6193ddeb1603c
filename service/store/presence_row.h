#pragma once
// A presence member as PostgreSQL stores it (table presence): the state
// as JSON text.

#include <cstdint>
#include <string>

namespace syncd::store {

struct PresenceRow {
  std::string channel;
  std::string connection_id;
  std::string client_id;
  std::string subject;
  std::string transport;
  std::int64_t connected_at_ms = 0;
  std::string state_json = "{}";  // a JSON object
  std::int64_t delivered = 0;
  std::int64_t applied = 0;
  // Only the position changed: nobody is told (positions raise no events).
  bool quiet = false;
};

}  // namespace syncd::store
