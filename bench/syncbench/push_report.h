#pragma once
// What `syncbench push` prints, against syncd or etcd alike, so that scripts
// compare the two from the same JSON fields: accepted writes/s, write -> ack
// latency, and the checks (every write accepted, each log gap-free).

#include <cmath>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "commands.h"
#include "report.h"

namespace syncbench {

struct PushTotals {
  double seconds = 0;  // the measured time
  Latencies latencies;  // of writes answered while measuring
  std::int64_t counted = 0, accepted = 0, other = 0;
  int failed_streams = 0;
  std::string first_error;
  // Accepted positions per log (a syncd channel, or etcd's one revision
  // counter): only this run writes them, so each must be consecutive.
  std::map<std::string, std::vector<std::int64_t>> logs;
};

// Prints the report (a line, or one JSON object with o.json); returns the
// exit code. `what_to_check` ends the message when streams failed.
inline int print_push_report(const PushOptions& o, PushTotals& t, const std::string& what_to_check) {
  std::string gaps;
  for (auto& [name, v] : t.logs) {
    std::sort(v.begin(), v.end());
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i] != v[0] + static_cast<std::int64_t>(i)) {
        gaps += name + " ";
        break;
      }
    }
  }
  Latencies& all = t.latencies;
  const double rate = static_cast<double>(t.counted) / t.seconds;
  nlohmann::ordered_json out = {
      {"command", "push"},
      {"target", o.target},
      {"accepted_per_s", std::round(rate)},
      {"ack_ms", {{"p50", all.quantile_ms(0.5)}, {"p99", all.quantile_ms(0.99)}, {"p999", all.quantile_ms(0.999)}}},
      {"acks_measured", t.counted},
      {"accepted_total", t.accepted},
      {"not_accepted", t.other},
      {"parameters", {{"streams", o.streams}, {"channels", o.channels}, {"window", o.window}, {"rate", o.rate},
                      {"batch", o.target == "syncd" && o.batch},
                      {"duration_s", std::chrono::duration<double>(o.duration).count()},
                      {"server", o.target == "etcd" ? o.etcd : o.server}}},
      {"machine", machine()},
  };
  const bool ok = t.other == 0 && gaps.empty() && t.failed_streams == 0 && t.accepted > 0;
  if (!ok) {
    std::string errors;
    if (t.failed_streams > 0) {
      errors = std::to_string(t.failed_streams) + " of " + std::to_string(o.streams) + " streams failed (" +
               (t.first_error.empty() ? "a write failed" : "status " + t.first_error) + "); " + what_to_check;
    }
    if (t.other > 0) errors += (errors.empty() ? "" : "; ") + std::to_string(t.other) + " writes not accepted";
    if (!gaps.empty()) errors += (errors.empty() ? "" : "; ") + std::string("versions with gaps on ") + gaps;
    if (errors.empty()) errors = "no write was accepted";
    out["errors"] = errors;
  }
  if (o.json) {
    std::cout << out.dump() << std::endl;
  } else {
    std::cout << "push (" << o.target << "): " << std::llround(rate) << " accepted writes/s over " << o.streams
              << " streams, " << o.channels << " channels, window " << o.window << "; ack p50 "
              << all.quantile_ms(0.5) << " ms, p99 " << all.quantile_ms(0.99) << " ms, p999 "
              << all.quantile_ms(0.999) << " ms (" << t.counted << " acks measured)\n";
    if (!ok) std::cout << "FAILED: " << out["errors"].get<std::string>() << "\n";
  }
  return ok ? 0 : 1;
}

}  // namespace syncbench
