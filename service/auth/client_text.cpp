#include "auth/client_text.h"

namespace syncd::auth {

std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  const std::size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
  }
  // No overlong forms, surrogates or code points past U+10FFFF.
  if ((c == 0xe0 && byte(i + 1) < 0xa0) || (c == 0xed && byte(i + 1) > 0x9f) || (c == 0xf0 && byte(i + 1) < 0x90) ||
      (c == 0xf4 && byte(i + 1) > 0x8f)) {
    return 0;
  }
  return n;
}

bool valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_sequence_length(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::optional<std::string> client_id_error(std::string_view client_id) {
  if (client_id.size() > 128) return "clientId is at most 128 bytes";
  for (const char c : client_id) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return "clientId may not contain control characters";
  }
  if (!valid_utf8(client_id)) return "clientId must be UTF-8 text";
  return std::nullopt;
}

}  // namespace syncd::auth
