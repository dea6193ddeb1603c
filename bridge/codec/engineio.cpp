#include "codec/engineio.h"

#include <charconv>

#include "codec/json_values.h"

namespace bridge::codec {

std::optional<EioPacket> decode_eio(std::string_view text) {
  if (text.empty() || text.front() < '0' || text.front() > '6') return std::nullopt;
  return EioPacket{static_cast<EioType>(text.front()), text.substr(1)};
}

std::optional<std::vector<std::string_view>> split_eio_payload(std::string_view body, std::size_t max_packets) {
  std::vector<std::string_view> out;
  while (true) {
    if (out.size() == max_packets) return std::nullopt;
    const auto sep = body.find(kRecordSeparator);
    out.push_back(body.substr(0, sep));
    if (sep == std::string_view::npos) return out;
    body.remove_prefix(sep + 1);
  }
}

std::variant<SioPacket, Error> decode_sio(std::string_view text, const ParseLimits& limits) {
  SioPacket p;
  if (text.empty() || text.front() < '0' || text.front() > '6') {
    return Error{"invalid_message", "a Socket.IO packet starts with its type, 0-6"};
  }
  p.type = static_cast<SioType>(text.front() - '0');
  text.remove_prefix(1);
  if (p.type == SioType::kBinaryEvent || p.type == SioType::kBinaryAck) {
    return Error{"invalid_message", "binary attachments are not supported; send JSON"};
  }
  if (!text.empty() && text.front() == '/') {
    const auto comma = text.find(',');
    const std::string_view nsp = text.substr(0, comma);
    if (nsp.size() > 128) return Error{"invalid_message", "a namespace is at most 128 characters"};
    p.nsp = std::string(nsp);
    text.remove_prefix(comma == std::string_view::npos ? text.size() : comma + 1);
  }
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits > 0) {
    if (digits > 15) return Error{"invalid_message", "an ack id is at most 15 digits"};
    std::int64_t id = 0;
    std::from_chars(text.data(), text.data() + digits, id);
    p.ack_id = id;
    text.remove_prefix(digits);
  }
  if (text.empty()) {
    if (p.type == SioType::kEvent || p.type == SioType::kAck) {
      return Error{"invalid_message", "an event or ack needs a JSON array"};
    }
    return p;
  }
  auto parsed = parse_json(text, limits);
  if (auto* e = std::get_if<ParseError>(&parsed)) return Error{std::move(e->code), std::move(e->message)};
  p.data = std::move(std::get<boost::json::value>(parsed));
  if (p.type == SioType::kEvent &&
      (!p.data.is_array() || p.data.get_array().empty() || !p.data.get_array().front().is_string())) {
    return Error{"invalid_message", "an event is a JSON array starting with the event name"};
  }
  if (p.type == SioType::kAck && !p.data.is_array()) return Error{"invalid_message", "an ack is a JSON array"};
  if (p.type == SioType::kConnect && !p.data.is_object()) {
    return Error{"invalid_message", "a CONNECT payload is a JSON object"};
  }
  return p;
}

std::string json_string(std::string_view text) { return dump(Json(std::string(text))); }

std::string eio_error(int code, std::string_view message) {
  return dump(Json::object({{"code", code}, {"message", message}}));
}

std::string eio_open(std::string_view sid, bool upgrades, int ping_interval_ms, int ping_timeout_ms,
                     std::size_t max_payload) {
  Json j = Json::object();
  j["sid"] = sid;
  j["upgrades"] = upgrades ? Json::array({"websocket"}) : Json::array();
  j["pingInterval"] = ping_interval_ms;
  j["pingTimeout"] = ping_timeout_ms;
  j["maxPayload"] = max_payload;
  return "0" + dump(j);
}

std::string sio_connected(std::string_view sid, std::string_view pid) {
  Json j = Json::object();
  j["sid"] = sid;
  j["pid"] = pid;
  return "40" + dump(j);
}

std::string sio_connect_error(std::string_view nsp, std::string_view message, std::string_view code) {
  Json j = Json::object();
  j["message"] = message;
  j["data"] = Json::object({{"code", code}});
  return "44" + (nsp == "/" ? std::string() : std::string(nsp) + ",") + dump(j);
}

std::string sio_event(std::string_view name, const std::vector<std::string>& args_json) {
  std::string out = "42[" + json_string(name);
  for (const auto& arg : args_json) {
    out += ',';
    out += arg;
  }
  out += ']';
  return out;
}

std::string sio_ack(std::int64_t id, std::string_view arg_json) {
  return "43" + std::to_string(id) + "[" + std::string(arg_json) + "]";
}

}  // namespace bridge::codec
