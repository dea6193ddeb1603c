#pragma once
// How long syncd trusts a silent database. A PostgreSQL server that
// crashes sends an RST and is noticed at once; one cut off by the network,
// or hung, sends nothing, and a connection waiting on it would wait for
// the kernel's defaults (hours). These libpq settings bound that.

#include <chrono>
#include <string>

namespace syncd::store {

// `url` (a postgresql:// URI or a key=value connection string) with these
// settings added, unless the URL already sets them:
//   connect_timeout      dead_after              (a connection attempt)
//   keepalives           1
//   keepalives_idle      dead_after / 3          (an idle connection probed,
//   keepalives_interval  dead_after / 6           then declared dead after
//   keepalives_count     3                        about 5/6 of dead_after)
//   tcp_user_timeout     dead_after              (data sent but not acknowledged)
// Each at least 1 second. See also pq::set_response_timeout, which bounds a
// wait for an answer on a connection the network still carries.
std::string with_liveness_settings(const std::string& url, std::chrono::seconds dead_after);

// Bounds every wait for an answer on an open connection, process-wide (a
// silent server behind a proxy or a hung one: TCP still carries the
// connection, so only a deadline finds it). Call once, before connecting.
void set_response_timeout(std::chrono::milliseconds timeout);

}  // namespace syncd::store
