#pragma once
// Builders for patches in tests, in the shapes the original clients send.

#include <google/protobuf/util/json_util.h>

#include <string>

#include "api/messages.h"

namespace syncd::testing {

// A patch from its JSON form (the WebSocket payload / grpcurl body).
inline api::Patch patch_from_json(const std::string& json) {
  api::Patch p;
  auto st = google::protobuf::util::JsonStringToMessage(json, &p);
  if (!st.ok()) throw std::runtime_error("bad test patch: " + st.ToString() + " in " + json);
  return p;
}

inline api::Patch create_node(const std::string& id, const std::string& node, const std::string& label = "Person",
                              const std::string& props = "{}", const std::string& client = "c1") {
  return patch_from_json(R"({"id":")" + id + R"(","clientId":")" + client +
                         R"(","op":"create_node","nodeId":")" + node + R"(","data":{"label":")" + label +
                         R"(","properties":)" + props + "}}");
}

inline api::Patch create_edge(const std::string& id, const std::string& edge, const std::string& from,
                              const std::string& to, const std::string& client = "c1") {
  return patch_from_json(R"({"id":")" + id + R"(","clientId":")" + client +
                         R"(","op":"create_edge","edgeId":")" + edge +
                         R"(","data":{"label":"KNOWS","fromNodeId":")" + from + R"(","toNodeId":")" + to +
                         R"(","properties":{}}})");
}

inline api::Patch set_property(const std::string& id, const std::string& type, const std::string& target,
                               const std::string& key, const std::string& value_json,
                               const std::string& client = "c1") {
  return patch_from_json(R"({"id":")" + id + R"(","clientId":")" + client +
                         R"(","op":"set_property","targetType":")" + type + R"(","targetId":")" + target +
                         R"(","propertyKey":")" + key + R"(","propertyValue":)" + value_json + "}");
}

inline api::Patch simple(const std::string& id, const std::string& op, const std::string& field,
                         const std::string& target, const std::string& client = "c1") {
  return patch_from_json(R"({"id":")" + id + R"(","clientId":")" + client + R"(","op":")" + op +
                         R"(",")" + field + R"(":")" + target + R"("})");
}

}  // namespace syncd::testing
