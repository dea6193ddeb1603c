#include "engine/hub.h"

#include <algorithm>

namespace syncd::engine {

void Hub::add(const std::string& channel, std::shared_ptr<Subscriber> s) {
  std::lock_guard lock(mu_);
  channels_[channel].push_back(std::move(s));
}

void Hub::remove(const std::string& channel, const Subscriber* s) {
  std::lock_guard lock(mu_);
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  auto& subs = it->second;
  subs.erase(std::remove_if(subs.begin(), subs.end(), [s](const auto& p) { return p.get() == s; }),
             subs.end());
  if (subs.empty()) channels_.erase(it);
}

std::vector<std::shared_ptr<Subscriber>> Hub::of(const std::string& channel) const {
  std::lock_guard lock(mu_);
  auto it = channels_.find(channel);
  return it == channels_.end() ? std::vector<std::shared_ptr<Subscriber>>{} : it->second;
}

void Hub::publish(const std::string& channel, const std::vector<Published>& patches) {
  for (const auto& s : of(channel)) s->on_commit(patches);
}

void Hub::remote_head(const std::string& channel, std::int64_t head) {
  for (const auto& s : of(channel)) s->on_remote_head(head);
}

void Hub::deleted(const std::string& channel) {
  for (const auto& s : of(channel)) s->on_deleted();
}

int Hub::subscriber_count(const std::string& channel) const {
  std::lock_guard lock(mu_);
  auto it = channels_.find(channel);
  return it == channels_.end() ? 0 : static_cast<int>(it->second.size());
}

std::vector<std::string> Hub::channels() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, subs] : channels_) out.push_back(name);
  return out;
}

std::vector<std::shared_ptr<Subscriber>> Hub::all() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<Subscriber>> out;
  for (const auto& [name, subs] : channels_) out.insert(out.end(), subs.begin(), subs.end());
  return out;
}

}  // namespace syncd::engine
