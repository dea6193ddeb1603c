#pragma once
// Why a patch was not stored. `code` is one of the ack codes of PROTOCOL.md
// (invalid_patch, too_large, not_found, conflict, ...); `reason` is a
// sentence for the person reading the client's log.

#include <string>

namespace syncd::graph {

struct Rejection {
  std::string code;
  std::string reason;
};

}  // namespace syncd::graph
