#pragma once
// The acknowledgements a Socket.IO client asked for with its sync:change
// events. An event carries one change or an array of them; it is answered
// once, when every change in it has its answer: with that answer, or with
// the array of answers in order for an array. Answers arrive by patch id
// (a client may resend an id: answers go to its events in order).
//
// Not thread-safe: the session's strand owns it.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace bridge::socketio {

class AckCollector {
 public:
  // Sends `43<ack id>[answer]` for a complete event.
  using Send = std::function<void(std::int64_t ack_id, std::string answer)>;
  explicit AckCollector(Send send) : send_(std::move(send)) {}

  // A new event of `size` changes answered by `ack_id` (none: nothing is
  // sent, answers are dropped); `batch`: answered as an array.
  std::uint64_t open(std::optional<std::int64_t> ack_id, bool batch, std::size_t size);
  // The change at `index` of event `event` waits for the answer to patch `id`.
  void expect(std::uint64_t event, std::size_t index, const std::string& id);
  // The change at `index` is answered now (refused before reaching syncd).
  void answer_at(std::uint64_t event, std::size_t index, std::string answer);
  // Syncd's answer to patch `id`, as its JSON.
  void answer(const std::string& id, std::string answer);

 private:
  struct Event {
    std::optional<std::int64_t> ack_id;
    bool batch = false;
    std::vector<std::optional<std::string>> answers;
    std::size_t missing = 0;
  };
  void complete(std::uint64_t key);

  Send send_;
  std::uint64_t next_ = 1;
  std::map<std::uint64_t, Event> events_;
  std::unordered_map<std::string, std::deque<std::pair<std::uint64_t, std::size_t>>> waiting_;
};

}  // namespace bridge::socketio
