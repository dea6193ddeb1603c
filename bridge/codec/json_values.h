#pragma once
// JSON values <-> google.protobuf.Value, shared by the codecs of both
// dialects. Private to bridge/codec: it pulls in nlohmann/json.hpp.

#include <nlohmann/json.hpp>
#include <optional>

#include "api/messages.h"
#include "codec/json_codec.h"

namespace bridge::codec {

// Insertion-ordered, so frames keep the order they were built (or sent) in.
using Json = nlohmann::ordered_json;

// JSON -> Value; false when nested deeper than the codec allows.
bool to_value(const Json& j, google::protobuf::Value* out, int depth);
// Value -> JSON: integers up to 2^53 - 1 as integers, other numbers as the
// shortest text of the double.
Json from_value(const google::protobuf::Value& v);
Json from_struct(const google::protobuf::Struct& s);

// A compact frame, with any invalid UTF-8 replaced rather than thrown.
std::string dump(const Json& j);

// An optional integer field of `j` (whole-valued floats accepted).
std::optional<Error> read_integer(const Json& j, const char* key, std::int64_t* out, bool* present);

}  // namespace bridge::codec
