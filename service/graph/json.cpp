#include "graph/json.h"

#include <google/protobuf/util/json_util.h>

namespace syncd::graph {

using google::protobuf::Struct;
using google::protobuf::Value;

std::string to_json(const Struct& s) {
  std::string out;
  // Struct always prints: its values were checked finite on the way in.
  (void)google::protobuf::util::MessageToJsonString(s, &out);
  return out;
}

std::optional<Struct> struct_from_json(const std::string& json) {
  Struct s;
  if (!google::protobuf::util::JsonStringToMessage(json, &s).ok()) return std::nullopt;
  return s;
}

std::string stamps_to_json(const std::map<std::string, Stamp>& stamps) {
  Struct s;
  for (const auto& [key, stamp] : stamps) {
    auto* list = (*s.mutable_fields())[key].mutable_list_value();
    list->add_values()->set_number_value(static_cast<double>(stamp.version));
    list->add_values()->set_string_value(stamp.client_id);
  }
  return to_json(s);
}

std::map<std::string, Stamp> stamps_from_json(const std::string& json) {
  std::map<std::string, Stamp> out;
  const std::optional<Struct> s = struct_from_json(json);
  if (!s) return out;
  for (const auto& [key, value] : s->fields()) {
    const auto& items = value.list_value().values();
    if (items.size() != 2) continue;
    out[key] = Stamp{static_cast<std::int64_t>(items[0].number_value()), items[1].string_value()};
  }
  return out;
}

}  // namespace syncd::graph
