#pragma once
// The channel names the bridge accepts before asking syncd: 1-128
// characters of [A-Za-z0-9._:-] (PROTOCOL.md).

#include <cctype>
#include <string_view>

namespace bridge {

inline bool valid_channel(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != ':' && c != '-') return false;
  }
  return true;
}

}  // namespace bridge
