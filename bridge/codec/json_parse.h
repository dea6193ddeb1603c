#pragma once
// Client frames to JSON values, in time and stack linear in the frame's
// size whatever its shape.
//
// Parsing is Boost.JSON's push parser, which keeps its own stack and stops
// at `max_depth` while it parses, so no recursion anywhere grows with the
// input; objects are hash tables (duplicate keys: the last one wins), so
// lookups stay constant-time however many keys a frame holds; and parsing
// stops at `max_values` JSON values, before more work is spent on a frame
// that could never be accepted. Numbers: integers that fit int64 or uint64
// stay integers; every other number becomes the nearest double (correctly
// rounded, as std::from_chars does it); one beyond a double's range is
// invalid JSON. Invalid UTF-8 is refused.
//
// Nothing here throws; parse_json is thread-safe.

#include <boost/json/value.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

namespace bridge::codec {

// sync-bridge's --max-frame-depth and --max-frame-values. The defaults sit
// well above what syncd accepts in a patch (data 16 deep, 10,000 values).
struct ParseLimits {
  std::size_t max_depth = 64;       // nested arrays and objects
  std::size_t max_values = 20'000;  // JSON values of every kind, keys not counted
  // syncd's --max-patch-bytes: the codecs refuse a patch that is surely
  // larger before turning it into protobuf (codec/json_codec.h). 0: no limit.
  std::size_t max_patch_bytes = 64 << 10;
};

// Why a text was refused: a PROTOCOL.md code (invalid_json, too_large)
// and a sentence saying which limit, never quoting the input.
struct ParseError {
  std::string code;
  std::string message;
};

// The value owns its memory (one arena per frame, freed with the value).
std::variant<boost::json::value, ParseError> parse_json(std::string_view text, const ParseLimits& limits);

}  // namespace bridge::codec
