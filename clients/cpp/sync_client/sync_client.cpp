#include "sync_client/sync_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <random>

namespace syncd::client {
namespace {

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return prefix + std::string(buf);
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void put(google::protobuf::Struct* s, const char* key, const std::string& value) {
  (*s->mutable_fields())[key].set_string_value(value);
}

}  // namespace

struct SyncClient::Link {
  std::unique_ptr<grpc::ClientReaderWriter<api::SessionRequest, api::SessionResponse>> stream;
  std::mutex write_mu;
  bool done = false;  // guarded by write_mu

  bool write(const api::SessionRequest& req) {
    std::lock_guard lock(write_mu);
    return !done && stream->Write(req);
  }
  void end() {
    std::lock_guard lock(write_mu);
    done = true;
  }
};

SyncClient::SyncClient(ClientOptions options)
    : options_([&] {
        if (options.client_id.empty()) options.client_id = random_id("cpp_");
        return options;
      }()),
      channel_(grpc::CreateChannel(options_.server, grpc::InsecureChannelCredentials())),
      stub_(api::Sync::NewStub(channel_)),
      thread_([this] { run(); }) {}

SyncClient::~SyncClient() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (ctx_ != nullptr) ctx_->TryCancel();
    changed_.notify_all();
  }
  thread_.join();
}

void SyncClient::run() {
  std::mt19937 rng{std::random_device{}()};
  std::chrono::milliseconds backoff = options_.reconnect_initial;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const auto started = std::chrono::steady_clock::now();
    session(lock);
    if (stopping_) break;
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(10)) backoff = options_.reconnect_initial;
    // Exponential backoff with jitter: half the delay fixed, half random.
    const auto delay = backoff / 2 + std::chrono::milliseconds(rng() % (backoff.count() / 2 + 1));
    changed_.wait_for(lock, delay, [this] { return stopping_; });
    backoff = std::min(backoff * 2, options_.reconnect_max);
  }
}

// One Session: open from the confirmed version, resend pending, read until
// the stream ends. Called and returns with `lock` held.
void SyncClient::session(std::unique_lock<std::mutex>& lock) {
  grpc::ClientContext ctx;
  auto link = std::make_shared<Link>();
  link->stream = stub_->Session(&ctx);
  ctx_ = &ctx;
  link_ = link;
  api::SessionRequest open;
  open.mutable_open()->set_channel(options_.channel);
  open.mutable_open()->set_from_version(version_);
  open.mutable_open()->set_client_id(options_.client_id);
  open.mutable_open()->set_batch(true);
  const std::vector<api::Patch> resend = pending_;
  lock.unlock();

  link->write(open);
  for (const api::Patch& p : resend) send(link, p);  // same ids: stored at most once
  std::thread heartbeat([&] {
    std::unique_lock hb(mu_);
    while (!changed_.wait_for(hb, options_.heartbeat, [&] { return stopping_ || link_ != link; })) {
      hb.unlock();
      api::SessionRequest req;
      req.mutable_heartbeat();
      link->write(req);
      hb.lock();
    }
  });
  api::SessionResponse msg;
  while (link->stream->Read(&msg)) {
    std::lock_guard guard(mu_);
    receive(msg);
  }

  lock.lock();
  link_ = nullptr;
  ctx_ = nullptr;
  connected_ = false;
  ++changes_;
  changed_.notify_all();
  lock.unlock();
  heartbeat.join();
  link->end();
  (void)link->stream->Finish();
  lock.lock();
  if (on_change_) on_change_();
}

void SyncClient::send(const std::shared_ptr<Link>& link, const api::Patch& p) {
  if (!link) return;  // offline: resent on reconnect
  api::SessionRequest req;
  *req.mutable_patch() = p;
  link->write(req);
}

void SyncClient::receive(const api::SessionResponse& msg) {
  if (msg.kind_case() == api::SessionResponse::kBatch) {
    for (const api::SessionResponse& each : msg.batch().responses()) {
      if (each.kind_case() != api::SessionResponse::kBatch) receive(each);  // never nested
    }
    return;
  }
  switch (msg.kind_case()) {
    case api::SessionResponse::kOpened:
      connected_ = true;
      break;
    case api::SessionResponse::kSyncState: {
      const api::SyncState& state = msg.sync_state();
      if (state.snapshot()) {
        // The history after our version was compacted: the server's state
        // at state.version() replaces ours (pending patches stay on top).
        confirmed_ = graph::Graph();
        arrived_.clear();
        version_ = state.version();
        snapshot_at_ = state.version();
      }
      for (const auto& p : state.patches()) {
        if (p.server_version() == snapshot_at_) {
          (void)confirmed_.apply(p, p.server_version(), graph::ConflictPolicy::kLastWriterWins);
        } else {
          arrive(p);
        }
      }
      break;
    }
    case api::SessionResponse::kBroadcast:
      arrive(msg.broadcast());
      break;
    case api::SessionResponse::kAck: {
      const api::Ack& ack = msg.ack();
      auto it = std::find_if(pending_.begin(), pending_.end(), [&](const api::Patch& p) { return p.id() == ack.patch_id(); });
      if (it == pending_.end()) break;
      api::Patch patch = std::move(*it);
      pending_.erase(it);
      if (ack.status() == api::Ack::REJECTED) {
        if (on_rejected_) on_rejected_(Rejection{patch, ack.code(), ack.reason()});
      } else {
        patch.set_server_version(ack.server_version());
        arrive(patch);
      }
      break;
    }
    default:
      return;
  }
  rebuild();
}

void SyncClient::arrive(const api::Patch& p) {
  if (p.server_version() <= version_) return;
  snapshot_at_ = -1;  // past the snapshot
  arrived_[p.server_version()] = p;
  // One of ours, stored in an earlier connection: confirmed now.
  pending_.erase(std::remove_if(pending_.begin(), pending_.end(), [&](const api::Patch& q) { return q.id() == p.id(); }),
                 pending_.end());
  for (auto it = arrived_.find(version_ + 1); it != arrived_.end(); it = arrived_.find(version_ + 1)) {
    (void)confirmed_.apply(it->second, it->first, graph::ConflictPolicy::kLastWriterWins);
    ++version_;
    arrived_.erase(it);
  }
}

void SyncClient::rebuild() {
  view_ = confirmed_;
  for (const auto& [v, p] : arrived_) (void)view_.apply(p, v, graph::ConflictPolicy::kLastWriterWins);
  for (const auto& p : pending_) (void)view_.apply(p, version_ + 1, graph::ConflictPolicy::kLastWriterWins);
  ++changes_;
  changed_.notify_all();
  if (on_change_) on_change_();
}

void SyncClient::submit(api::Patch patch) {
  std::shared_ptr<Link> link;
  {
    std::lock_guard lock(mu_);
    if (patch.id().empty()) patch.set_id(random_id("p_"));
    patch.set_client_id(options_.client_id);
    if (patch.timestamp() == 0) patch.set_timestamp(now_ms());
    patch.set_base_version(version_);
    pending_.push_back(patch);
    rebuild();
    link = link_;
  }
  send(link, patch);
}

std::string SyncClient::create_node(const std::string& label, const google::protobuf::Struct& properties,
                                    std::string node_id) {
  if (node_id.empty()) node_id = random_id("n_");
  api::Patch p;
  p.set_op("create_node");
  p.set_node_id(node_id);
  put(p.mutable_data(), "label", label);
  *(*p.mutable_data()->mutable_fields())["properties"].mutable_struct_value() = properties;
  submit(std::move(p));
  return node_id;
}

void SyncClient::update_node(const std::string& node_id, const google::protobuf::Struct& properties) {
  api::Patch p;
  p.set_op("update_node");
  p.set_node_id(node_id);
  *(*p.mutable_data()->mutable_fields())["properties"].mutable_struct_value() = properties;
  submit(std::move(p));
}

void SyncClient::delete_node(const std::string& node_id) {
  api::Patch p;
  p.set_op("delete_node");
  p.set_node_id(node_id);
  submit(std::move(p));
}

std::string SyncClient::create_edge(const std::string& label, const std::string& from, const std::string& to,
                                    const google::protobuf::Struct& properties, std::string edge_id) {
  if (edge_id.empty()) edge_id = random_id("e_");
  api::Patch p;
  p.set_op("create_edge");
  p.set_edge_id(edge_id);
  put(p.mutable_data(), "label", label);
  put(p.mutable_data(), "fromNodeId", from);
  put(p.mutable_data(), "toNodeId", to);
  *(*p.mutable_data()->mutable_fields())["properties"].mutable_struct_value() = properties;
  submit(std::move(p));
  return edge_id;
}

void SyncClient::delete_edge(const std::string& edge_id) {
  api::Patch p;
  p.set_op("delete_edge");
  p.set_edge_id(edge_id);
  submit(std::move(p));
}

void SyncClient::set_property(const std::string& target_type, const std::string& target_id, const std::string& key,
                              const google::protobuf::Value& value) {
  api::Patch p;
  p.set_op("set_property");
  p.set_target_type(target_type);
  p.set_target_id(target_id);
  p.set_property_key(key);
  *p.mutable_property_value() = value;
  submit(std::move(p));
}

void SyncClient::remove_property(const std::string& target_type, const std::string& target_id, const std::string& key) {
  api::Patch p;
  p.set_op("remove_property");
  p.set_target_type(target_type);
  p.set_target_id(target_id);
  p.set_property_key(key);
  submit(std::move(p));
}

std::optional<graph::Element> SyncClient::node(const std::string& id) const {
  std::lock_guard lock(mu_);
  const graph::Element* e = view_.node(id);
  return e ? std::optional(*e) : std::nullopt;
}

std::optional<graph::Element> SyncClient::edge(const std::string& id) const {
  std::lock_guard lock(mu_);
  const graph::Element* e = view_.edge(id);
  return e ? std::optional(*e) : std::nullopt;
}

std::size_t SyncClient::node_count() const {
  std::lock_guard lock(mu_);
  return view_.nodes().size();
}

std::int64_t SyncClient::server_version() const {
  std::lock_guard lock(mu_);
  return version_;
}

std::size_t SyncClient::pending_count() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

bool SyncClient::connected() const {
  std::lock_guard lock(mu_);
  return connected_;
}

void SyncClient::on_change(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  on_change_ = std::move(fn);
}

void SyncClient::on_rejected(std::function<void(const Rejection&)> fn) {
  std::lock_guard lock(mu_);
  on_rejected_ = std::move(fn);
}

bool SyncClient::wait_until(const std::function<bool(const SyncClient&)>& pred, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::uint64_t seen;
    {
      std::lock_guard lock(mu_);
      seen = changes_;
    }
    if (pred(*this)) return true;
    std::unique_lock lock(mu_);
    if (!changed_.wait_until(lock, deadline, [&] { return changes_ != seen || stopping_; })) {
      lock.unlock();
      return pred(*this);
    }
  }
}

}  // namespace syncd::client
