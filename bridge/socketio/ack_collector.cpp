#include "socketio/ack_collector.h"

namespace bridge::socketio {

std::uint64_t AckCollector::open(std::int64_t ack_id, bool batch, std::size_t size) {
  const std::uint64_t key = next_++;
  Event& e = events_[key];
  e.ack_id = ack_id;
  e.batch = batch;
  e.answers.resize(size);
  e.missing = size;
  if (size == 0) complete(key);
  return key;
}

namespace {
// Channel names hold no newline.
std::string key(const std::string& channel, const std::string& id) { return channel + '\n' + id; }
}  // namespace

void AckCollector::expect(std::uint64_t event, std::size_t index, const std::string& channel, const std::string& id) {
  waiting_[key(channel, id)].emplace_back(event, index);
}

void AckCollector::answer_at(std::uint64_t event, std::size_t index, std::string answer) {
  auto it = events_.find(event);
  if (it == events_.end() || it->second.answers[index]) return;
  it->second.answers[index] = std::move(answer);
  if (--it->second.missing == 0) complete(event);
}

void AckCollector::answer(const std::string& channel, const std::string& id, std::string answer) {
  auto it = waiting_.find(key(channel, id));
  if (it == waiting_.end()) return;
  const auto [event, index] = it->second.front();
  it->second.pop_front();
  if (it->second.empty()) waiting_.erase(it);
  answer_at(event, index, std::move(answer));
}

void AckCollector::complete(std::uint64_t key) {
  auto node = events_.extract(key);
  Event& e = node.mapped();
  if (!e.batch) return send_(e.ack_id, std::move(*e.answers.front()));
  std::string all = "[";
  for (std::size_t i = 0; i < e.answers.size(); ++i) {
    if (i > 0) all += ',';
    all += *e.answers[i];
  }
  all += ']';
  send_(e.ack_id, std::move(all));
}

}  // namespace bridge::socketio
