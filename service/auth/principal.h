#pragma once
// Who is calling, and which channels they may read and write.
//
// A channel pattern is an exact channel name ("lobby"), a prefix ending in
// '*' ("user-42:*" matches every channel whose name starts with "user-42:"),
// or "*" alone (every channel). Patterns come from a token's claims
// (auth/verifier.h); with authentication off every caller is the anonymous
// principal, which may read and write everything.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace syncd::auth {

bool pattern_matches(std::string_view pattern, std::string_view channel);

struct Principal {
  std::string subject;  // the token's `sub`; empty for the anonymous principal
  std::vector<std::string> read;   // channel patterns
  std::vector<std::string> write;  // channel patterns
  // When the token stops being valid (its `exp`); none: never.
  std::optional<std::chrono::system_clock::time_point> expires;

  static Principal anonymous() { return {"", {"*"}, {"*"}, std::nullopt}; }
  bool authenticated() const { return !subject.empty(); }
  bool can_read(std::string_view channel) const;
  bool can_write(std::string_view channel) const;
};

}  // namespace syncd::auth
