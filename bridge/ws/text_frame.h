#pragma once
// The header of one whole text message as a server sends it: a single
// unmasked frame with FIN set (RFC 6455 §5.2). The bridge frames its own
// data messages (see CoalescingStream::try_append); Beast still frames the
// handshake, control frames and the close.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bridge {

class TextFrameHeader {
 public:
  explicit TextFrameHeader(std::size_t payload) {
    bytes_[0] = static_cast<char>(0x81);  // FIN, opcode 1 (text); no RSV bits, so never compressed
    if (payload < 126) {
      bytes_[1] = static_cast<char>(payload);
      size_ = 2;
    } else if (payload <= 0xFFFF) {
      bytes_[1] = 126;
      put_big_endian(payload, 2);
      size_ = 4;
    } else {
      bytes_[1] = 127;
      put_big_endian(payload, 8);
      size_ = 10;
    }
  }

  std::string_view bytes() const { return {bytes_, size_}; }

 private:
  // The payload length after the first two bytes, most significant first.
  void put_big_endian(std::uint64_t n, std::size_t width) {
    for (std::size_t i = 0; i < width; ++i) bytes_[2 + i] = static_cast<char>(n >> (8 * (width - 1 - i)));
  }

  char bytes_[10];
  std::size_t size_;
};

}  // namespace bridge
