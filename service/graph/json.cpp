#include "graph/json.h"

#include <boost/json/parse.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>

namespace syncd::graph {

using google::protobuf::Struct;
using google::protobuf::Value;

namespace {

void write_string(const std::string& s, std::string& out) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void write_struct(const Struct& s, std::string& out);

void write_value(const Value& v, std::string& out) {
  switch (v.kind_case()) {
    case Value::kNumberValue: {
      const double d = v.number_value();
      if (!std::isfinite(d)) {
        out += "null";  // not JSON; check_shape and presence_state_error refuse them first
        break;
      }
      char buf[32];
      // Integers as integers (exact up to 2^53), others as their shortest round-trip form.
      const auto r = std::abs(d) < 9007199254740992.0 && d == std::trunc(d)
                         ? std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(d))
                         : std::to_chars(buf, buf + sizeof buf, d);
      out.append(buf, r.ptr);
      break;
    }
    case Value::kStringValue: write_string(v.string_value(), out); break;
    case Value::kBoolValue: out += v.bool_value() ? "true" : "false"; break;
    case Value::kStructValue: write_struct(v.struct_value(), out); break;
    case Value::kListValue: {
      out += '[';
      bool first = true;
      for (const Value& item : v.list_value().values()) {
        if (!first) out += ',';
        first = false;
        write_value(item, out);
      }
      out += ']';
      break;
    }
    default: out += "null"; break;  // null, or no kind at all
  }
}

void write_struct(const Struct& s, std::string& out) {
  out += '{';
  bool first = true;
  for (const auto& [key, value] : s.fields()) {
    if (!first) out += ',';
    first = false;
    write_string(key, out);
    out += ':';
    write_value(value, out);
  }
  out += '}';
}

}  // namespace

// Written here rather than by protobuf's JSON printer, which costs several
// times as much: state rows are written on every commit.
std::string to_json(const Struct& s) {
  std::string out;
  write_struct(s, out);
  return out;
}

namespace {

// The same mapping as protobuf's JSON parser (every number a double), at a
// fraction of its cost: state rows are parsed on every commit and snapshot.
void to_value(const boost::json::value& in, Value* out) {
  switch (in.kind()) {
    case boost::json::kind::null: out->set_null_value(google::protobuf::NULL_VALUE); break;
    case boost::json::kind::bool_: out->set_bool_value(in.get_bool()); break;
    case boost::json::kind::int64: out->set_number_value(static_cast<double>(in.get_int64())); break;
    case boost::json::kind::uint64: out->set_number_value(static_cast<double>(in.get_uint64())); break;
    case boost::json::kind::double_: out->set_number_value(in.get_double()); break;
    case boost::json::kind::string: out->set_string_value(std::string(in.get_string())); break;
    case boost::json::kind::array: {
      auto* list = out->mutable_list_value();
      for (const auto& item : in.get_array()) to_value(item, list->add_values());
      break;
    }
    case boost::json::kind::object: {
      auto& fields = *out->mutable_struct_value()->mutable_fields();
      for (const auto& [key, item] : in.get_object()) to_value(item, &fields[std::string(key)]);
      break;
    }
  }
}

}  // namespace

std::optional<Struct> struct_from_json(const std::string& json) {
  boost::json::parse_options options;
  options.max_depth = 256;  // stored data passed check_shape's depth limit
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(json, ec, {}, options);
  if (ec || !v.is_object()) return std::nullopt;
  Struct s;
  for (const auto& [key, item] : v.get_object()) to_value(item, &(*s.mutable_fields())[std::string(key)]);
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
