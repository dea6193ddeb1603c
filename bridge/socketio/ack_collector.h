#pragma once
// The acknowledgements a Socket.IO client asked for with its sync:change
// events. An event carries one change or an array of them; it is answered
// once, when every change in it has its answer: with that answer, or with
// the array of answers in order for an array. Answers arrive by channel and
// patch id; when one id is in flight twice on one channel (a resend), its
// answers go to its events in the order the answers come.
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

  // A new event of `size` changes answered by `ack_id`; `batch`: answered as an array.
  std::uint64_t open(std::int64_t ack_id, bool batch, std::size_t size);
  // The change at `index` of event `event` waits for the answer to patch `id` on `channel`.
  void expect(std::uint64_t event, std::size_t index, const std::string& channel, const std::string& id);
  // The change at `index` is answered now (refused before reaching syncd).
  void answer_at(std::uint64_t event, std::size_t index, std::string answer);
  // Syncd's answer to patch `id` on `channel`, as its JSON.
  void answer(const std::string& channel, const std::string& id, std::string answer);

 private:
  struct Event {
    std::int64_t ack_id = 0;
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
