#pragma once
// Reading a WebSocket message without holding memory while the client is
// quiet, for every socket that waits on its client (/sync and Socket.IO).
//
// Beast's async_read prepares 1,536 bytes before each read, which an idle
// socket holds for as long as it waits. Here a message is read in two
// steps: at most kFirstRead bytes (most client frames are shorter), then,
// only when the message is longer, the rest (frame by frame, Beast
// preparing what each frame has left). After a message, the buffer gives
// back anything beyond kFirstRead, so one long message does not pin its
// buffer for the socket's life.

#include <cstddef>
#include <utility>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace bridge {

inline constexpr std::size_t kFirstRead = 512;

// Reads one whole message into `buffer`, then calls
// `handler(error_code, bytes)` (bytes of the last step: the message is
// buffer.size()). The stream's read_message_max still bounds the message.
template <class Stream, class Handler>
void async_read_lean(boost::beast::websocket::stream<Stream>& ws, boost::beast::flat_buffer& buffer,
                     Handler handler) {
  ws.async_read_some(buffer, kFirstRead,
                     [&ws, &buffer, handler = std::move(handler)](boost::beast::error_code ec, std::size_t bytes) mutable {
                       if (ec || ws.is_message_done()) return handler(ec, bytes);
                       ws.async_read(buffer, std::move(handler));
                     });
}

// Empties `buffer` after its message was handled, keeping no more than kFirstRead.
inline void release_read(boost::beast::flat_buffer& buffer) {
  buffer.consume(buffer.size());
  if (buffer.capacity() > kFirstRead) buffer.shrink_to_fit();
}

}  // namespace bridge
