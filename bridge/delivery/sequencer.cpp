#include "delivery/sequencer.h"

namespace bridge {

void Sequencer::skip_to(std::int64_t version) {
  if (version > cursor_) cursor_ = version;
}

void Sequencer::restart_at(std::int64_t version, std::vector<Out>& out) {
  cursor_ = version;
  while (!parked_.empty() && parked_.begin()->first <= version) {
    out.push_back(Out{nullptr, std::move(parked_.begin()->second)});
    parked_.erase(parked_.begin());
  }
  while (!held_.empty() && held_.front()->version <= version) held_.pop_front();
  release(out);
}

void Sequencer::sent(const std::string& id) {
  ++sent_[id];
  ++in_flight_;
}

void Sequencer::forget(const std::string& id) {
  auto it = sent_.find(id);
  if (it == sent_.end()) return;
  --in_flight_;
  if (--it->second == 0) sent_.erase(it);
}

void Sequencer::patch(upstream::Item item, std::vector<Out>& out) {
  if (item->version <= cursor_) return;
  if (!held_.empty() && item->version <= held_.back()->version) return;
  if (!held_.empty() || !step(item, out)) held_.push_back(std::move(item));
}

bool Sequencer::step(const upstream::Item& item, std::vector<Out>& out) {
  if (auto it = parked_.find(item->version); it != parked_.end()) {
    out.push_back(Out{nullptr, std::move(it->second)});
    parked_.erase(it);
  } else if (sent_.count(item->patch.id()) > 0) {
    return false;
  } else {
    out.push_back(Out{item, {}});
  }
  cursor_ = item->version;
  return true;
}

void Sequencer::answered(const api::Ack& ack, std::vector<Out>& out) {
  forget(ack.patch_id());
  if (ack.status() == api::Ack::ACCEPTED && ack.server_version() > cursor_) {
    parked_.emplace(ack.server_version(), ack);
  } else {
    out.push_back(Out{nullptr, ack});
  }
  release(out);
}

void Sequencer::abandoned(const std::string& id, std::vector<Out>& out) {
  forget(id);
  release(out);
}

void Sequencer::release(std::vector<Out>& out) {
  while (!held_.empty() && step(held_.front(), out)) held_.pop_front();
}

}  // namespace bridge
