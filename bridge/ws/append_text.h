#pragma once
// Hands one whole text message to a WebSocket's CoalescingStream, framed by
// the bridge itself (ws/text_frame.h), with no asynchronous operation.

#include <boost/beast/websocket/stream.hpp>
#include <string_view>

#include "ws/coalescing_stream.h"
#include "ws/text_frame.h"

namespace bridge {

enum class Appended {
  kDone,    // queued for the socket
  kFull,    // the stream holds its limit: wait for when_room(), then try again
  kClosed,  // Beast is closing the stream (its close frame may be out): nothing may follow
  kFailed,  // the client is gone
};

inline Appended append_text(boost::beast::websocket::stream<CoalescingStream>& ws, std::string_view text) {
  auto& out = ws.next_layer();
  if (out.error()) return Appended::kFailed;
  if (!ws.is_open()) return Appended::kClosed;
  return out.try_append(TextFrameHeader(text.size()).bytes(), text) ? Appended::kDone : Appended::kFull;
}

}  // namespace bridge
