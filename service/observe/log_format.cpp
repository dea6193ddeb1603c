#include "observe/log_format.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

namespace syncd::observe {

namespace {

// The message as a JSON string, quotes included. Log messages may carry a
// client's bytes (already sanitised by their callers), so every control
// character and invalid UTF-8 byte is escaped rather than trusted.
class JsonMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    dest.push_back('"');
    for (const char ch : msg.payload) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        dest.push_back('\\');
        dest.push_back(ch);
      } else if (c < 0x20 || c >= 0x7f) {
        // \u00XX keeps the line valid JSON whatever the byte was.
        const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        dest.append(esc, esc + sizeof esc);
      } else {
        dest.push_back(ch);
      }
    }
    dest.push_back('"');
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessage>(); }
};

}  // namespace

bool set_log_format(const std::string& format, std::string* error) {
  if (format == "text") return true;
  if (format != "json") {
    *error = "--log-format must be text or json, not \"" + format.substr(0, 32) + "\"";
    return false;
  }
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<JsonMessage>('*').set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":%*})");
  spdlog::set_formatter(std::move(formatter));
  return true;
}

}  // namespace syncd::observe
