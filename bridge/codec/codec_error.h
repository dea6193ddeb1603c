#pragma once
// What went wrong with a client frame, for every codec.

#include <string>

namespace bridge::codec {

// A PROTOCOL.md error code (invalid_json, invalid_message, invalid_patch,
// unknown_type) and a sentence for the developer reading the client's
// console.
struct Error {
  std::string code;
  std::string message;
};

}  // namespace bridge::codec
