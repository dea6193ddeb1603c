#include "observe/health.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace syncd::observe {

std::string health_json(std::string_view status, long long active_connections) {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t secs = system_clock::to_time_t(now);
  const long long ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, ms);
  // `status` is one of the callers' own words, never client input.
  return std::string(R"({"status":")") + std::string(status) + R"(","timestamp":")" + stamp +
         R"(","activeConnections":)" + std::to_string(active_connections) + "}";
}

}  // namespace syncd::observe
