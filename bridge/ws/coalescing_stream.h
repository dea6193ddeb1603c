#pragma once
// The layer between Beast's websocket::stream and the TCP socket: it
// gathers the frames written while a send is in flight into the next send.
//
// Beast writes one frame per operation, so without this layer a socket
// taking every patch of a busy channel costs one system call per frame
// (40% of the bridge's CPU at 300,000 deliveries/s). Here a write copies its
// bytes into `pending` and completes at once; whenever no send is in flight,
// everything pending goes out in one send. A socket that keeps up still gets
// each frame at once; a backlog leaves in batches.
//
// Data messages skip Beast's write operation altogether: the session frames
// them itself and hands them to try_append(), a copy with no asynchronous
// operation, strand post or handler allocation per frame (those were
// about 40% of the bridge's CPU under fan-out). Beast's own writes (the handshake
// response, pongs, the close) still come through async_write_some.
//
// Invariants:
// - Bytes reach the socket in the order they were written, and every frame
//   enters `pending` whole (both paths append a frame in one step), so data
//   frames and Beast's control frames never interleave inside a frame.
// - Memory is bounded: while more than kMaxPending bytes wait, a write
//   completes only when the send in flight ends, and try_append refuses,
//   so a slow client slows its writer.
// - The state (socket and buffers) is shared with the send in flight, so a
//   session that goes away mid-send leaves nothing dangling; the socket
//   closes when that send ends.
// - A send error is sticky: it fails the parked write and every later one.
//
// Not thread-safe: used on the socket's strand, like the websocket stream.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace bridge {

class CoalescingStream {
 public:
  using next_layer_type = boost::beast::tcp_stream;
  using executor_type = next_layer_type::executor_type;

  // Past this many pending bytes, writes wait for the send in flight.
  static constexpr std::size_t kMaxPending = 256 * 1024;

  explicit CoalescingStream(next_layer_type&& socket) : state_(std::make_shared<State>(std::move(socket))) {}

  executor_type get_executor() noexcept { return state_->socket.get_executor(); }
  next_layer_type& next_layer() noexcept { return state_->socket; }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return state_->socket.async_read_some(buffers, std::forward<Token>(token));
  }

  // Copies the bytes and completes at once (posted, never inline), unless
  // more than kMaxPending bytes wait.
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::beast::error_code, std::size_t)>(
        [state = state_](auto handler, const ConstBuffers& b) {
          const std::size_t n = boost::asio::buffer_size(b);
          const auto ex = state->socket.get_executor();
          if (state->error) {
            boost::asio::post(ex, [h = std::move(handler), ec = state->error]() mutable { std::move(h)(ec, 0); });
            return;
          }
          for (const auto buffer : boost::beast::buffers_range_ref(b)) {
            state->pending.append(static_cast<const char*>(buffer.data()), buffer.size());
          }
          if (!state->busy) send(state);
          if (state->pending.size() > kMaxPending) {
            state->parked.emplace(WriteHandler(std::move(handler)), n);
            return;
          }
          boost::asio::post(ex, [h = std::move(handler), n]() mutable { std::move(h)(boost::beast::error_code{}, n); });
        },
        token, buffers);
  }

  // Appends `header` then `payload` (one whole frame) to what goes out
  // next, unless more than kMaxPending bytes already wait or a send failed.
  // Returns whether it did.
  bool try_append(std::string_view header, std::string_view payload) {
    if (state_->error || state_->pending.size() > kMaxPending) return false;
    state_->pending.append(header);
    state_->pending.append(payload);
    if (!state_->busy) send(state_);
    return true;
  }

  // Frees the send buffers when nothing waits and no send is in flight, so
  // an idle socket does not keep the capacity of its last burst (up to
  // kMaxPending plus a history page, which can be 1 MiB). Called from a
  // periodic timer, not after each send: a busy socket reuses its buffers.
  void release_idle_buffers() {
    if (state_->busy || !state_->pending.empty()) return;
    std::string().swap(state_->pending);
    std::string().swap(state_->sending);
  }

  // The first send error, sticky; try_append refuses once there is one.
  boost::beast::error_code error() const { return state_->error; }

  // Calls `fn` once, on the socket's executor and never inline, when
  // try_append may succeed again: pending bytes are down to kMaxPending,
  // or a send failed. Replaces an earlier `fn` not yet called.
  void when_room(std::function<void()> fn) {
    if (state_->error || state_->pending.size() <= kMaxPending) {
      boost::asio::post(state_->socket.get_executor(), std::move(fn));
      return;
    }
    state_->room = std::move(fn);
  }

  // Completes once everything written so far has been sent (or failed).
  template <class Token>
  auto async_flush(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::beast::error_code)>(
        [state = state_](auto handler) { flush(state, FlushHandler(std::move(handler))); }, token);
  }

 private:
  using WriteHandler = boost::asio::any_completion_handler<void(boost::beast::error_code, std::size_t)>;
  using FlushHandler = boost::asio::any_completion_handler<void(boost::beast::error_code)>;

  struct State {
    explicit State(next_layer_type&& s) : socket(std::move(s)) {}
    next_layer_type socket;
    std::string pending;   // written, not yet handed to a send
    std::string sending;   // the send in flight, if `busy`
    bool busy = false;
    boost::beast::error_code error;  // the first send error
    std::optional<std::pair<WriteHandler, std::size_t>> parked;  // waits for room
    std::optional<FlushHandler> flushed;                          // waits for idle
    std::function<void()> room;                                   // waits for room, see when_room
  };

  static void flush(const std::shared_ptr<State>& state, FlushHandler handler) {
    if (!state->busy || state->error) {
      boost::asio::post(state->socket.get_executor(),
                        [h = std::move(handler), ec = state->error]() mutable { std::move(h)(ec); });
      return;
    }
    state->flushed.emplace(std::move(handler));
  }

  static void send(const std::shared_ptr<State>& state) {
    state->busy = true;
    state->sending.swap(state->pending);
    state->pending.clear();
    boost::asio::async_write(state->socket, boost::asio::buffer(state->sending),
                             [state](boost::beast::error_code ec, std::size_t) { sent(state, ec); });
  }

  static void sent(const std::shared_ptr<State>& state, boost::beast::error_code ec) {
    state->busy = false;
    state->sending.clear();
    if (ec && !state->error) state->error = ec;
    if (!state->error && !state->pending.empty()) send(state);
    if (state->parked && (state->error || state->pending.size() <= kMaxPending)) {
      auto [handler, n] = std::move(*state->parked);
      state->parked.reset();
      std::move(handler)(state->error, state->error ? 0 : n);
    }
    if (state->room && (state->error || state->pending.size() <= kMaxPending)) {
      auto fn = std::move(state->room);
      state->room = nullptr;
      fn();
    }
    if (state->flushed && (!state->busy || state->error)) {
      auto handler = std::move(*state->flushed);
      state->flushed.reset();
      std::move(handler)(state->error);
    }
  }

  std::shared_ptr<State> state_;
};

// Beast closes a websocket through teardown of its next layer: send what is
// pending (the close frame among it) first.
template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, CoalescingStream& stream, TeardownHandler&& handler) {
  stream.async_flush([role, &stream, h = std::forward<TeardownHandler>(handler)](boost::beast::error_code) mutable {
    using boost::beast::websocket::async_teardown;  // beside the socket's own, found by ADL
    async_teardown(role, stream.next_layer(), std::move(h));
  });
}

}  // namespace bridge
