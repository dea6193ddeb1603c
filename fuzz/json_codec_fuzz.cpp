// libFuzzer target: the bridge's JSON codec on arbitrary client frames
// (fuzz/run.sh runs it on a small stack with a per-input time limit).
// Neither dialect's decoder may crash, leak or hit undefined behaviour, and
// a patch it accepts must survive an encode/decode round trip with the same
// JSON value (object key order inside data may change: protobuf maps keep none).
// A presence state it accepts must encode back to valid JSON.

#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "auth/token_format.h"
#include "codec/crdt_codec.h"
#include "codec/json_codec.h"
#include "codec/presence_codec.h"
#include "ws/token_claims.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view frame(reinterpret_cast<const char*>(data), size);
  auto decoded = bridge::codec::decode_client_frame(frame);
  if (auto* msg = std::get_if<bridge::codec::ClientMessage>(&decoded)) {
    if (auto* patch = std::get_if<syncapi::v1::Patch>(msg)) {
      const std::string json = bridge::codec::patch_to_json(*patch);
      auto again = bridge::codec::patch_from_json(json);
      if (!std::holds_alternative<syncapi::v1::Patch>(again)) std::abort();  // its own output must parse
      const auto twice = bridge::codec::patch_to_json(std::get<syncapi::v1::Patch>(again));
      if (nlohmann::json::parse(twice) != nlohmann::json::parse(json)) std::abort();
      (void)bridge::codec::encode_broadcast(*patch);
    } else if (auto* refresh = std::get_if<syncapi::v1::Refresh>(msg)) {
      // An auth frame's token goes upstream only in the checked form.
      const auto bearer = syncd::auth::bearer_token(refresh->token());
      if (bearer.ok() && !syncd::auth::legal_metadata_value(syncd::auth::authorization_value(bearer.token))) {
        std::abort();
      }
      if (bearer.ok()) (void)bridge::read_claims(bearer.token);
    } else if (auto* update = std::get_if<syncapi::v1::PresenceUpdate>(msg)) {
      // A state goes back out to every subscriber in a member's frame.
      syncapi::v1::PresenceEvent event;
      *event.mutable_join()->mutable_state() = update->state();
      const std::string out = bridge::codec::encode_presence(event);
      if (!nlohmann::json::accept(out)) std::abort();
    }
  }
  (void)bridge::codec::decode_crdt_frame(frame, "fuzz");
  return 0;
}
