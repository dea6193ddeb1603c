#include "presence/presence_link.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include "codec/presence_codec.h"
#include "observe/bridge_metrics.h"

namespace bridge::presence {

class PresenceLink::Stream final : public grpc::ClientBidiReactor<api::PresenceRequest, api::PresenceEvent> {
 public:
  explicit Stream(PresenceLink& link) : link_(link) {}

  // Once, after the link has recorded the stream (and marked it busy, so
  // nothing is written before the call exists). The hold keeps the call
  // alive until the link has stopped writing to it (see OnReadDone).
  void start(const std::string& authorization) {
    if (!authorization.empty()) ctx_.AddMetadata("authorization", authorization);
    link_.stub_->async()->Presence(&ctx_, this);
    AddHold();
    StartRead(&event_);
    StartCall();
  }
  // One at a time: the message stays alive until OnWriteDone.
  void write(api::PresenceRequest r) {
    in_flight_ = std::move(r);
    StartWrite(&in_flight_);
  }
  void cancel() { ctx_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The call is ending: no write may start on it from now on.
      link_.on_read_side_done(this);
      RemoveHold();
      return;
    }
    link_.on_event(event_);
    StartRead(&event_);
  }
  void OnWriteDone(bool ok) override { link_.on_write_done(this, ok); }
  void OnDone(const grpc::Status& status) override {
    link_.on_done(this, status);
    delete this;
  }

 private:
  PresenceLink& link_;
  grpc::ClientContext ctx_;
  api::PresenceEvent event_;
  api::PresenceRequest in_flight_;
};

namespace {

// 64 random bits in hex: this bridge process among every bridge.
std::string random_process_id() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

}  // namespace

PresenceLink::PresenceLink(std::shared_ptr<api::Sync::Stub> stub, std::function<std::string()> authorization)
    : stub_(std::move(stub)),
      authorization_(std::move(authorization)),
      process_id_(random_process_id()),
      thread_([this] { run(); }) {}

PresenceLink::~PresenceLink() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  if (stream_ != nullptr) stream_->cancel();
  wake_.notify_all();
  wake_.wait(lock, [this] { return stream_ == nullptr; });
  lock.unlock();
  if (thread_.joinable()) thread_.join();
}

std::string PresenceLink::next_id() {
  std::lock_guard lock(mu_);
  return process_id_ + "." + std::to_string(++next_id_);
}

void PresenceLink::connect(const std::string& channel, const std::string& id, api::PresenceConnect connect,
                           std::weak_ptr<Listener> listener) {
  std::lock_guard lock(mu_);
  api::PresenceRequest r;
  *r.mutable_connect() = connect;
  r.mutable_connect()->set_channel(channel);
  r.mutable_connect()->set_connection_id(id);
  conns_[{channel, id}] = Conn{std::move(connect), 0, 0, std::move(listener)};
  observe::Metrics::get().presence_members.Set(static_cast<double>(conns_.size()));
  enqueue(std::move(r));
}

void PresenceLink::set_state(const std::string& channel, const std::string& id, google::protobuf::Struct state) {
  std::lock_guard lock(mu_);
  auto it = conns_.find({channel, id});
  if (it == conns_.end()) return;
  // Kept once, in the connect message (announced again after a reconnect);
  // the update is built from it when it is sent.
  *it->second.connect.mutable_state() = std::move(state);
  sets_.insert(it->first);
  schedule_flush();
}

void PresenceLink::position(const std::string& channel, const std::string& id, std::int64_t delivered,
                            std::int64_t applied) {
  std::lock_guard lock(mu_);
  auto it = conns_.find({channel, id});
  if (it == conns_.end() || (it->second.delivered == delivered && it->second.applied == applied)) return;
  it->second.delivered = delivered;
  it->second.applied = applied;
  api::PresenceRequest r;
  auto* p = r.mutable_position();
  p->set_channel(channel);
  p->set_connection_id(id);
  p->set_delivered_version(delivered);
  p->set_applied_version(applied);
  positions_[{channel, id}] = std::move(r);
  schedule_flush();
}

void PresenceLink::disconnect(const std::string& channel, const std::string& id) {
  std::lock_guard lock(mu_);
  const Key key{channel, id};
  // Sent even when syncd refused the connect (it ignores unknown ids):
  // whatever it holds of this socket goes.
  conns_.erase(key);
  observe::Metrics::get().presence_members.Set(static_cast<double>(conns_.size()));
  sets_.erase(key);
  positions_.erase(key);
  api::PresenceRequest r;
  r.mutable_disconnect()->set_channel(channel);
  r.mutable_disconnect()->set_connection_id(id);
  enqueue(std::move(r));
}

void PresenceLink::subscribe(const std::string& channel, std::weak_ptr<Listener> listener) {
  Frame known;
  {
    std::lock_guard lock(mu_);
    Channel& ch = channels_[channel];
    ch.listeners.push_back(listener);
    if (ch.listeners.size() == 1) {
      api::PresenceRequest r;
      r.mutable_watch()->set_channel(channel);
      r.mutable_watch()->set_batch(true);
      enqueue(std::move(r));
    } else if (ch.known) {
      known = std::make_shared<const std::string>(codec::encode_presence_state(ch.list));
    }
  }
  if (known) send_to({listener}, std::make_shared<const std::vector<Frame>>(1, known));
}

void PresenceLink::unsubscribe(const std::string& channel, const Listener* listener) {
  std::lock_guard lock(mu_);
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  auto& ls = it->second.listeners;
  ls.erase(std::remove_if(ls.begin(), ls.end(),
                          [&](const std::weak_ptr<Listener>& w) {
                            auto l = w.lock();
                            return !l || l.get() == listener;
                          }),
           ls.end());
  if (!ls.empty()) return;
  channels_.erase(it);
  api::PresenceRequest r;
  r.mutable_unwatch()->set_channel(channel);
  enqueue(std::move(r));
}

void PresenceLink::request(const std::string& channel, const std::weak_ptr<Listener>& listener) {
  Frame known;
  {
    std::lock_guard lock(mu_);
    auto it = channels_.find(channel);
    if (it == channels_.end() || !it->second.known) return;  // the list follows when it comes
    known = std::make_shared<const std::string>(codec::encode_presence_state(it->second.list));
  }
  send_to({listener}, std::make_shared<const std::vector<Frame>>(1, known));
}

std::size_t PresenceLink::connections() const {
  std::lock_guard lock(mu_);
  return conns_.size();
}

void PresenceLink::enqueue(api::PresenceRequest r) {
  // With no stream (or one ending), nothing is queued: the next stream
  // starts by announcing every socket and watch there is then, so the
  // queue stays bounded however long syncd is away.
  if (stream_ == nullptr || dead_) return;
  out_.push_back(std::move(r));
  schedule_flush();
}

void PresenceLink::schedule_flush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  wake_.notify_all();
}

void PresenceLink::pump() {
  if (stream_ == nullptr || writing_ || dead_) return;
  // Requests gather for kFlushDelay after the first of them, then go
  // together (and what did not fit in one message, as soon as it is written).
  if (!flush_ready_ || (out_.empty() && sets_.empty() && positions_.empty())) return;
  // Everything waiting, in one message (up to kMaxBatch requests): the
  // ordered requests first, then the latest state and position of each
  // socket. One message in flight at a time, so under load the batches grow
  // rather than the wait.
  api::PresenceRequest next;
  auto* batch = next.mutable_batch()->mutable_requests();
  while (!out_.empty() && batch->size() < kMaxBatch) {
    *batch->Add() = std::move(out_.front());
    out_.pop_front();
  }
  while (!sets_.empty() && batch->size() < kMaxBatch) {
    const auto conn = conns_.find(*sets_.begin());
    sets_.erase(sets_.begin());
    if (conn == conns_.end()) continue;  // refused and forgotten since
    auto* set = batch->Add()->mutable_set();
    set->set_channel(conn->first.first);
    set->set_connection_id(conn->first.second);
    *set->mutable_state() = conn->second.connect.state();
  }
  while (!positions_.empty() && batch->size() < kMaxBatch) {
    *batch->Add() = std::move(positions_.begin()->second);
    positions_.erase(positions_.begin());
  }
  flush_ready_ = !out_.empty() || !sets_.empty() || !positions_.empty();  // what did not fit goes next
  if (batch->size() == 1) {
    api::PresenceRequest one = std::move(*batch->Mutable(0));
    next = std::move(one);
  }
  writing_ = true;
  stream_->write(std::move(next));
}

void PresenceLink::on_write_done(Stream* s, bool ok) {
  std::lock_guard lock(mu_);
  if (s != stream_ || !ok) return;  // a failed write: the call is ending, and stays busy
  writing_ = false;
  pump();
}

void PresenceLink::on_read_side_done(Stream* s) {
  std::lock_guard lock(mu_);
  if (s == stream_) dead_ = true;
}

void PresenceLink::on_done(Stream* s, const grpc::Status& status) {
  std::lock_guard lock(mu_);
  if (s != stream_) return;
  stream_ = nullptr;
  writing_ = false;
  if (!stopping_) {
    spdlog::warn("presence stream to syncd ended ({}); reopening it", status.error_message());
  }
  wake_.notify_all();
}

void PresenceLink::run() {
  std::unique_lock lock(mu_);
  int failures = 0;
  while (!stopping_) {
    // Everything known is announced again on the new stream.
    out_.clear();
    sets_.clear();
    positions_.clear();
    for (auto& [name, ch] : channels_) {
      ch.known = false;
      ch.list.Clear();
      api::PresenceRequest r;
      r.mutable_watch()->set_channel(name);
      r.mutable_watch()->set_batch(true);
      out_.push_back(std::move(r));
    }
    for (const auto& [key, conn] : conns_) {
      api::PresenceRequest r;
      *r.mutable_connect() = conn.connect;
      r.mutable_connect()->set_channel(key.first);
      r.mutable_connect()->set_connection_id(key.second);
      out_.push_back(std::move(r));
      if (conn.delivered > 0 || conn.applied > 0) {
        api::PresenceRequest p;
        p.mutable_position()->set_channel(key.first);
        p.mutable_position()->set_connection_id(key.second);
        p.mutable_position()->set_delivered_version(conn.delivered);
        p.mutable_position()->set_applied_version(conn.applied);
        positions_[key] = std::move(p);
      }
    }
    auto* stream = new Stream(*this);
    stream_ = stream;
    writing_ = true;  // nothing is written until the call exists
    dead_ = false;
    lock.unlock();
    stream->start(authorization_());
    const auto started = std::chrono::steady_clock::now();
    lock.lock();
    if (stream_ == stream) writing_ = false;
    flush_ready_ = true;
    pump();
    // The flush timer, while the stream lasts.
    while (stream_ == stream) {
      wake_.wait(lock, [&] { return stream_ != stream || flush_scheduled_; });
      if (stream_ != stream) break;
      wake_.wait_for(lock, kFlushDelay, [&] { return stream_ != stream; });  // let requests gather
      flush_scheduled_ = false;
      flush_ready_ = true;
      pump();
    }
    failures = std::chrono::steady_clock::now() - started < std::chrono::seconds(5) ? failures + 1 : 0;
    if (failures > 0) {
      wake_.wait_for(lock, std::min(std::chrono::milliseconds(200) * failures, std::chrono::milliseconds(5000)),
                     [this] { return stopping_; });
    }
  }
}

}  // namespace bridge::presence
