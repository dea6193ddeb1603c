#include "auth/principal.h"

#include <algorithm>

namespace syncd::auth {

bool pattern_matches(std::string_view pattern, std::string_view channel) {
  if (!pattern.empty() && pattern.back() == '*') {
    pattern.remove_suffix(1);
    return channel.substr(0, pattern.size()) == pattern;
  }
  return pattern == channel;
}

namespace {
bool any_matches(const std::vector<std::string>& patterns, std::string_view channel) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return pattern_matches(p, channel); });
}
}  // namespace

bool Principal::can_read(std::string_view channel) const { return any_matches(read, channel); }
bool Principal::can_write(std::string_view channel) const { return any_matches(write, channel); }

}  // namespace syncd::auth
