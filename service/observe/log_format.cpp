#include "observe/log_format.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include <string_view>

namespace syncd::observe {

namespace {

// The length of the valid UTF-8 sequence at s[i] (1-4), or 0.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  std::size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
  }
  // No overlong forms, surrogates or code points past U+10FFFF.
  if ((c == 0xe0 && byte(i + 1) < 0xa0) || (c == 0xed && byte(i + 1) > 0x9f) || (c == 0xf0 && byte(i + 1) < 0x90) ||
      (c == 0xf4 && byte(i + 1) > 0x8f)) {
    return 0;
  }
  return n;
}

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
      } else if (const std::size_t n = utf8_length(text, i); n > 0) {
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
