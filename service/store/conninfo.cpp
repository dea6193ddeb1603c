#include "store/conninfo.h"

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

#include "store/pq.h"

namespace syncd::store {
namespace {

bool is_uri(const std::string& url) {
  return url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0;
}

// Whether the URL already names `key`: as a URI query parameter, or as a
// key=value word (spaces around `=` allowed) of a connection string.
bool names(const std::string& url, const std::string& key) {
  for (std::size_t at = url.find(key); at != std::string::npos; at = url.find(key, at + 1)) {
    const bool starts = at == 0 || url[at - 1] == '?' || url[at - 1] == '&' ||
                        std::isspace(static_cast<unsigned char>(url[at - 1])) != 0;
    std::size_t after = at + key.size();
    while (after < url.size() && url[after] == ' ') ++after;
    if (starts && after < url.size() && url[after] == '=') return true;
  }
  return false;
}

}  // namespace

std::string with_liveness_settings(const std::string& url, std::chrono::seconds dead_after) {
  const long long s = std::max<long long>(dead_after.count(), 1);
  const std::vector<std::pair<std::string, long long>> settings = {
      {"connect_timeout", s},
      {"keepalives", 1},
      {"keepalives_idle", std::max(s / 3, 1LL)},
      {"keepalives_interval", std::max(s / 6, 1LL)},
      {"keepalives_count", 3},
      {"tcp_user_timeout", s * 1000},
  };
  std::string out = url;
  const bool uri = is_uri(url);
  for (const auto& [key, value] : settings) {
    if (names(url, key)) continue;
    if (uri) {
      out += out.find('?') == std::string::npos ? '?' : '&';
    } else if (!out.empty()) {
      out += ' ';
    }
    out += key + "=" + std::to_string(value);
  }
  return out;
}

void set_response_timeout(std::chrono::milliseconds timeout) { pq::set_response_timeout(timeout); }

}  // namespace syncd::store
