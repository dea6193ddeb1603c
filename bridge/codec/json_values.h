#pragma once
// JSON values <-> google.protobuf.Value, shared by the codecs of both
// dialects. Private to bridge/codec.
//
// Client frames are read as Boost.JSON values (codec/json_parse.h: bounded
// depth, linear time); frames to clients are built with nlohmann's ordered
// JSON, which prints the shortest text of every double.

#include <boost/json/value.hpp>
#include <nlohmann/json.hpp>
#include <optional>

#include "api/messages.h"
#include "codec/json_codec.h"
#include "codec/json_parse.h"

namespace bridge::codec {

// Frames to clients: insertion-ordered, so they keep the order they are built in.
using Json = nlohmann::ordered_json;

// A parsed client value -> Value. The parser bounds the depth, so the
// recursion here is bounded too.
void to_value(const boost::json::value& j, google::protobuf::Value* out);

// Value -> JSON: integers up to 2^53 - 1 as integers, other numbers as the
// shortest text of the double. Linear in the number of keys.
Json from_value(const google::protobuf::Value& v);
Json from_struct(const google::protobuf::Struct& s);

// A lower bound of the protobuf encoding of `j` inside a Patch: the bytes
// of its strings and keys, eight per number, one per other value. Cheap
// (no allocation), so a patch surely over the size limit is refused before
// it is converted.
std::size_t encoded_size_floor(const boost::json::value& j);

// A compact frame, with any invalid UTF-8 replaced rather than thrown.
std::string dump(const Json& j);
// A server frame: {"type": type, "payload": payload}.
std::string frame(const char* type, Json payload);

// An optional integer field of `j` (whole-valued floats accepted).
std::optional<Error> read_integer(const boost::json::object& j, std::string_view key, std::int64_t* out,
                                  bool* present);

// The string at `key`, or nullptr when absent or not a string.
const boost::json::string* find_string(const boost::json::object& j, std::string_view key);

}  // namespace bridge::codec
