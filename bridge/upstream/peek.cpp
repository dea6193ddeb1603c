#include "upstream/peek.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include "api/messages.h"

namespace bridge::upstream {

using google::protobuf::internal::WireFormatLite;

std::optional<PeekedBroadcast> peek_broadcast(std::string_view response) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(response.data()),
                                            static_cast<int>(response.size()));
  const std::uint32_t tag = in.ReadTag();
  // A SessionResponse is a oneof: a broadcast is its only field.
  if (tag != WireFormatLite::MakeTag(api::SessionResponse::kBroadcastFieldNumber,
                                     WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
    return std::nullopt;
  }
  std::uint32_t len;
  if (!in.ReadVarint32(&len)) return std::nullopt;
  const int start = in.CurrentPosition();
  if (static_cast<std::size_t>(start) + len != response.size()) return std::nullopt;
  PeekedBroadcast out{response.substr(static_cast<std::size_t>(start), len), 0};
  while (const std::uint32_t t = in.ReadTag()) {
    if (WireFormatLite::GetTagFieldNumber(t) == api::Patch::kServerVersionFieldNumber &&
        WireFormatLite::GetTagWireType(t) == WireFormatLite::WIRETYPE_VARINT) {
      std::uint64_t v;
      if (!in.ReadVarint64(&v)) return std::nullopt;
      out.version = static_cast<std::int64_t>(v);  // the last one wins, as in a parse
    } else if (!WireFormatLite::SkipField(&in, t)) {
      return std::nullopt;
    }
  }
  if (!in.ConsumedEntireMessage() || out.version <= 0) return std::nullopt;
  return out;
}

}  // namespace bridge::upstream
