#include "codec/json_parse.h"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/value_stack.hpp>
#include <charconv>
#include <new>

namespace bridge::codec {

namespace json = boost::json;

namespace {

enum class Stop { kNone, kTooMany, kNumber };

// Builds a json::value on a value_stack (as Boost's own parser does), and
// counts values and re-reads every non-integer number with std::from_chars:
// Boost 1.81's own conversion can be one unit in the last place off.
class Handler {
 public:
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);

  // The parse stack uses the heap; the value it builds uses `sp`.
  Handler(json::storage_ptr sp, std::size_t max_values) : max_values_(max_values) { stack_.reset(std::move(sp)); }

  json::value release() { return stack_.release(); }
  Stop stop() const { return stop_; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_array_begin(json::error_code& ec) { return count(ec); }
  bool on_array_end(std::size_t n, json::error_code&) {
    stack_.push_array(n);
    return true;
  }
  bool on_object_begin(json::error_code& ec) { return count(ec); }
  bool on_object_end(std::size_t n, json::error_code&) {
    stack_.push_object(n);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    stack_.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code& ec) {
    if (!count(ec)) return false;
    stack_.push_string(s);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    stack_.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    stack_.push_key(s);
    return true;
  }
  bool on_number_part(json::string_view s, json::error_code&) {
    number_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, json::string_view, json::error_code& ec) {
    number_.clear();
    if (!count(ec)) return false;
    stack_.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code& ec) {
    number_.clear();
    if (!count(ec)) return false;
    stack_.push_uint64(u);
    return true;
  }
  bool on_double(double, json::string_view s, json::error_code& ec) {
    if (!count(ec)) return false;
    std::string_view text(s.data(), s.size());
    if (!number_.empty()) {
      number_.append(s.data(), s.size());
      text = number_;
    }
    double d = 0;
    const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), d);
    number_.clear();
    if (err != std::errc() || end != text.data() + text.size()) {
      stop_ = Stop::kNumber;  // beyond a double's range
      ec = json::error::exponent_overflow;
      return false;
    }
    stack_.push_double(d);
    return true;
  }
  bool on_bool(bool b, json::error_code& ec) {
    if (!count(ec)) return false;
    stack_.push_bool(b);
    return true;
  }
  bool on_null(json::error_code& ec) {
    if (!count(ec)) return false;
    stack_.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  bool count(json::error_code& ec) {
    if (++values_ <= max_values_) return true;
    stop_ = Stop::kTooMany;
    ec = json::error::object_too_large;
    return false;
  }

  json::value_stack stack_;
  std::size_t max_values_;
  std::size_t values_ = 0;
  std::string number_;  // a number's text split across parts
  Stop stop_ = Stop::kNone;
};

}  // namespace

std::variant<json::value, ParseError> parse_json(std::string_view text, const ParseLimits& limits) {
  json::parse_options options;
  options.max_depth = limits.max_depth;
  try {
    // One arena per frame: the parsed tree is freed in one step.
    json::storage_ptr sp = json::make_shared_resource<json::monotonic_resource>();
    json::basic_parser<Handler> parser(options, sp, limits.max_values);
    json::error_code ec;
    const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
    if (!ec && used != text.size()) ec = json::error::extra_data;
    if (ec) {
      if (parser.handler().stop() == Stop::kTooMany) {
        return ParseError{"too_large", "the frame holds more than " + std::to_string(limits.max_values) +
                                           " JSON values"};
      }
      if (ec == json::error::too_deep) {
        return ParseError{"invalid_json", "the frame nests arrays and objects deeper than " +
                                              std::to_string(limits.max_depth) + " levels"};
      }
      if (parser.handler().stop() == Stop::kNumber) {
        return ParseError{"invalid_json", "the frame holds a number beyond the range of a double"};
      }
      return ParseError{"invalid_json", "the frame is not valid JSON (" + ec.message() + ")"};
    }
    return parser.handler().release();
  } catch (const std::bad_alloc&) {
    return ParseError{"too_large", "the frame is too large to parse"};
  } catch (const std::exception& e) {
    // Boost.JSON's container limits (strings, objects over its maximum sizes).
    return ParseError{"too_large", std::string("the frame is too large to parse (") + e.what() + ")"};
  }
}

}  // namespace bridge::codec
