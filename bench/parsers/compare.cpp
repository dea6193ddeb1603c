// The JSON parsers the bridge could read client frames with, timed on the
// frame shapes an attacker would send. The bridge's choice (codec/json_parse:
// Boost.JSON's push parser under limits, doubles re-read with from_chars)
// against nlohmann's ordered_json DOM (what the bridge used before), nlohmann
// with a depth-limited SAX handler, Boost.JSON's own DOM parser, and
// simdjson. Not part of the build (simdjson is no dependency of the
// project); BENCHMARKS.md has the figures. From the repository root:
//
//   apt-get install libsimdjson-dev
//   g++ -O3 -DNDEBUG -std=c++20 -Ibridge bench/parsers/compare.cpp bridge/codec/json_parse.cpp \
//       -lsimdjson -ljemalloc -o /tmp/compare
//   /tmp/compare
//
// jemalloc, as sync-bridge links it: with glibc's allocator every parse of
// a large frame maps fresh pages, and the page faults swamp the figures.

#include <boost/json/src.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <simdjson.h>
#include <string>

#include "codec/json_parse.h"

namespace bj = boost::json;
using Ordered = nlohmann::ordered_json;
using Plain = nlohmann::json;

namespace {

std::string keys(int n) {
  std::string s = R"({"type":"heartbeat","payload":{)";
  for (int i = 0; i < n; i++) s += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  return s + "}}";
}
std::string deep(int n) { return R"({"type":"patch","payload":)" + std::string(n, '[') + std::string(n, ']') + "}"; }
std::string doubles(std::size_t bytes) {
  std::string s = R"({"type":"patch","payload":{"id":"x","op":"opaque","data":{"a":[)";
  for (int i = 0; s.size() < bytes; i++) s += (i ? ",0.1234567890123" : "0.1234567890123") + std::to_string(i % 10);
  return s + "]}}}";
}
std::string text(std::size_t bytes) {
  return R"({"type":"patch","payload":{"id":"x","op":"opaque","data":{"a":")" + std::string(bytes, 'a') + "\"}}}";
}
std::string small() {
  return R"({"type":"patch","payload":{"id":"p_1","timestamp":1234567890,"clientId":"client_123","op":"create_node",)"
         R"("nodeId":"n_1","data":{"label":"Person","properties":{"name":"John","age":42,"tags":["a","b"]}}}})";
}

template <class F>
double ms_per_run(F f, int runs) {
  const auto t = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; i++) f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count() / runs;
}

struct DepthLimitedSax : nlohmann::detail::json_sax_dom_parser<Plain> {
  using Base = nlohmann::detail::json_sax_dom_parser<Plain>;
  int depth = 0;
  explicit DepthLimitedSax(Plain& j) : Base(j, false) {}
  bool start_object(std::size_t n) { return ++depth <= 64 && Base::start_object(n); }
  bool end_object() { --depth; return Base::end_object(); }
  bool start_array(std::size_t n) { return ++depth <= 64 && Base::start_array(n); }
  bool end_array() { --depth; return Base::end_array(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }
};

}  // namespace

int main() {
  struct Shape {
    const char* name;
    std::string text;
    int runs;
    bool ordered;  // time ordered_json too (it takes seconds on the large-object shape, and overflows the stack on the deep one)
  } shapes[] = {
      {"a 250-byte patch", small(), 20000, true},
      {"1 MiB of 61,000 doubles", doubles(1 << 20), 5, true},
      {"1 MiB string", text(1 << 20), 10, true},
      {"20,000 keys (290 KB)", keys(20000), 3, true},
      {"90,000 keys (1.3 MB)", keys(90000), 3, false},
      {"100,000 levels deep", deep(100000), 3, false},
  };
  simdjson::dom::parser simd;
  if (simd.allocate(2 << 20, 64) != simdjson::SUCCESS) return 1;
  const bridge::codec::ParseLimits unbounded{.max_depth = 64, .max_values = 1u << 30};
  std::printf("%-26s %12s %14s %12s %12s %12s %16s\n", "ms per frame", "ordered_json", "nlohmann+SAX", "Boost DOM",
              "simdjson", "bridge", "bridge, limits");
  for (auto& s : shapes) {
    std::printf("%-26s", s.name);
    if (s.ordered) {
      std::printf(" %12.3f", ms_per_run([&] { auto j = Ordered::parse(s.text, nullptr, false); }, s.runs));
    } else {
      std::printf(" %12s", "-");
    }
    std::printf(" %14.3f", ms_per_run([&] {
      Plain j;
      DepthLimitedSax h(j);
      Plain::sax_parse(s.text, &h, nlohmann::detail::input_format_t::json, false);
    }, s.runs));
    std::printf(" %12.3f", ms_per_run([&] {
      bj::monotonic_resource mr;
      bj::parse_options o;
      o.max_depth = 64;
      bj::error_code ec;
      auto v = bj::parse(s.text, ec, &mr, o);
    }, s.runs));
    std::printf(" %12.3f", ms_per_run([&] { auto r = simd.parse(s.text); (void)r.error(); }, s.runs));
    std::printf(" %12.3f", ms_per_run([&] { auto r = bridge::codec::parse_json(s.text, unbounded); }, s.runs));
    // Under the default limits (64 deep, 20,000 values) it stops at the first one it meets.
    std::printf(" %16.3f\n", ms_per_run([&] { auto r = bridge::codec::parse_json(s.text, {}); }, s.runs));
  }

  // Doubles: how many of 200,000 random ones come back exactly from their
  // shortest round-trip text (%.17g).
  std::mt19937_64 rng(1);
  int boost_off = 0, bridge_off = 0, simd_off = 0, n = 0;
  while (n < 200000) {
    double d;
    const std::uint64_t bits = rng();
    std::memcpy(&d, &bits, sizeof d);
    if (!std::isfinite(d)) continue;
    ++n;
    char buf[64];
    std::snprintf(buf, sizeof buf, "[%.17g]", d);
    bj::error_code ec;
    if (bj::parse(buf, ec).as_array()[0].to_number<double>() != d) ++boost_off;
    auto ours = bridge::codec::parse_json(buf, {});
    if (std::get<bj::value>(ours).as_array()[0].to_number<double>() != d) ++bridge_off;
    double sd = 0;
    if (simd.parse(buf, std::strlen(buf)).at(0).get(sd) != simdjson::SUCCESS || sd != d) ++simd_off;
  }
  std::printf("\ndoubles read back wrong, of %d: Boost DOM %d, simdjson %d, bridge %d\n", n, boost_off, simd_off,
              bridge_off);
  // What each does with numbers JavaScript writes and JSON allows.
  for (const char* probe : {"[100000000000000000000]", "[18446744073709551616]", "[1e400]"}) {
    auto ours = bridge::codec::parse_json(probe, {});
    auto sr = simd.parse(probe, std::strlen(probe));
    std::printf("%-26s nlohmann %-10s simdjson %-10s bridge %s\n", probe,
                Plain::parse(probe, nullptr, false).is_discarded() ? "refused" : "a double",
                sr.error() ? "refused" : "a double",
                std::holds_alternative<bj::value>(ours) ? "a double" : "refused");
  }
}
