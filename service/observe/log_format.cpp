#include "observe/log_format.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <string_view>

#include "auth/client_text.h"

namespace syncd::observe {

namespace {

// The message as a JSON string, quotes included. Log messages may carry a
// client's bytes (already sanitised by their callers): control characters
// are escaped and an invalid UTF-8 byte becomes U+FFFD, so every line is
// valid JSON whatever the message held.
class JsonMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    const std::string_view text(msg.payload.data(), msg.payload.size());
    dest.push_back('"');
    for (std::size_t i = 0; i < text.size();) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c == '"' || c == '\\') {
        dest.push_back('\\');
        dest.push_back(text[i++]);
      } else if (c < 0x20 || c == 0x7f) {
        const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        dest.append(esc, esc + sizeof esc);
        ++i;
      } else if (c < 0x80) {
        dest.push_back(text[i++]);
      } else if (const std::size_t n = auth::utf8_sequence_length(text, i); n > 0) {
        dest.append(text.data() + i, text.data() + i + n);
        i += n;
      } else {
        static constexpr std::string_view kReplacement = "\\ufffd";
        dest.append(kReplacement.data(), kReplacement.data() + kReplacement.size());
        ++i;
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
