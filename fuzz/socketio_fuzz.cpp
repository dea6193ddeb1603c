// libFuzzer target: the bridge's Engine.IO / Socket.IO decoders on
// arbitrary polling bodies and WebSocket messages (fuzz/run.sh runs it on a
// small stack with a per-input time limit). No decoder may crash, leak or
// hit undefined behaviour; a change it accepts must come back out as a
// change object that is valid JSON naming the same id; a presence event it
// accepts names a channel or none.

#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "codec/engineio.h"
#include "codec/socketio_codec.h"
#include "dialect/socketio_encoder.h"

namespace codec = bridge::codec;

namespace {

void check_change(const boost::json::value& value) {
  std::string id;
  auto decoded = codec::decode_change(value, {}, &id);
  auto* change = std::get_if<codec::Change>(&decoded);
  if (change == nullptr) return;
  auto* patch = std::get_if<syncapi::v1::Patch>(&change->patch);
  if (patch == nullptr) return;
  if (patch->id() != id) std::abort();
  const auto out = nlohmann::json::parse(codec::change_json(*patch, "fuzz"), nullptr, false);
  if (out.is_discarded() || !out.is_object()) std::abort();
  if (patch->op() != "opaque" && out.value("id", std::string()) != id) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto packets = codec::split_eio_payload(body, 64);
  if (!packets) return 0;
  for (const auto text : *packets) {
    const auto packet = codec::decode_eio(text);
    if (!packet || packet->type != codec::EioType::kMessage) continue;
    auto decoded = codec::decode_sio(packet->data, {});
    auto* sio = std::get_if<codec::SioPacket>(&decoded);
    if (sio == nullptr) continue;
    if (sio->type == codec::SioType::kConnect && sio->data.is_object()) {
      if (const auto* offset = sio->data.get_object().if_contains("offset"); offset && offset->is_string()) {
        std::string channel;
        std::int64_t version = 0;
        if (bridge::dialect::SocketIoEncoder::parse_offset(offset->get_string(), &channel, &version) && version < 0) {
          std::abort();
        }
      }
    }
    if (sio->type != codec::SioType::kEvent) continue;
    const auto& args = sio->data.get_array();
    if (args.size() < 2) continue;
    // Joins and presence events: decoded or refused, whatever the payload.
    (void)codec::decode_join(args[1]);
    for (const char* name : {"sync:presence_update", "sync:applied", "sync:presence_subscribe"}) {
      auto event = codec::decode_presence_event(name, args[1]);
      if (auto* ok = std::get_if<codec::PresenceEvent>(&event); ok && ok->channel && ok->channel->empty()) std::abort();
    }
    if (args[1].is_array()) {
      for (const auto& one : args[1].get_array()) check_change(one);
    } else {
      check_change(args[1]);
    }
  }
  return 0;
}
