#pragma once
// Rules for text a client names itself or its state with, applied alike by
// syncd and sync-bridge: a protobuf string must be valid UTF-8 (syncd
// refuses to parse a message holding anything else, so one bad byte
// forwarded by a bridge would end its whole stream).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace syncd::auth {

// The length (1-4) of the valid UTF-8 sequence starting at text[i], or 0.
std::size_t utf8_sequence_length(std::string_view text, std::size_t i);
bool valid_utf8(std::string_view text);

// Why `client_id` cannot name a client (1-128 bytes of UTF-8, no control
// characters), or nullopt when it can. Empty is allowed (no name).
std::optional<std::string> client_id_error(std::string_view client_id);

}  // namespace syncd::auth
