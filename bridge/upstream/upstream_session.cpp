#include "upstream/upstream_session.h"

#include "upstream/peek.h"

namespace bridge::upstream {

// The gRPC side. Deletes itself in OnDone, after telling the owner.
class UpstreamSession::Reactor final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  Reactor(std::shared_ptr<UpstreamSession> owner, std::weak_ptr<Listener> listener)
      : owner_(std::move(owner)), listener_(std::move(listener)) {}

  grpc::ClientContext ctx;

  // Called with owner_->mu_ held. False when the caller should wait.
  bool send_locked(const api::SessionRequest& msg) {
    grpc::Slice bytes(msg.SerializeAsString());
    writes_.emplace_back(&bytes, 1);
    if (writes_.size() == 1 && !writes_closed_) StartWrite(&writes_.front());
    if (writes_.size() < kMaxQueuedWrites) return true;
    drain_wanted_ = true;
    return false;
  }

  void resume_locked() {
    if (!paused_) return;
    paused_ = false;
    StartRead(&read_);
  }

  void OnWriteDone(bool ok) override {
    bool drained = false;
    {
      std::lock_guard lock(owner_->mu_);
      writes_.pop_front();
      if (!ok) {
        writes_closed_ = true;  // the stream is ending; OnDone follows
        writes_.clear();
        return;
      }
      if (!writes_.empty()) StartWrite(&writes_.front());
      if (drain_wanted_ && writes_.size() <= kMaxQueuedWrites / 2) {
        drain_wanted_ = false;
        drained = true;
      }
    }
    if (drained) {
      if (auto l = listener_.lock()) l->on_upstream_drained();
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is ending; OnDone has the status
    bool keep_reading = true;
    if (auto l = listener_.lock()) keep_reading = deliver(*l);
    std::lock_guard lock(owner_->mu_);
    if (keep_reading) {
      StartRead(&read_);
    } else {
      paused_ = true;
    }
  }

  // Hands the message just read to the listener: a broadcast as bytes,
  // anything else decoded. A message that does not decode ends the stream.
  // Locals, not members: a socket must not keep the capacity of the
  // largest page it ever got.
  bool deliver(Listener& l) {
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (read_.Dump(&slices).ok()) {
      for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    read_.Clear();
    if (auto b = peek_broadcast(bytes)) return l.on_upstream_broadcast(b->version, b->patch);
    api::SessionResponse decoded;
    if (!decoded.ParseFromString(bytes)) {
      ctx.TryCancel();
      return false;
    }
    return l.on_upstream_message(decoded);
  }

  void OnDone(const grpc::Status& status) override {
    {
      std::lock_guard lock(owner_->mu_);
      owner_->reactor_ = nullptr;
    }
    if (auto l = listener_.lock()) l->on_upstream_done(status);
    delete this;
  }

 private:
  std::shared_ptr<UpstreamSession> owner_;  // keeps the mutex alive until OnDone
  std::weak_ptr<Listener> listener_;
  grpc::ByteBuffer read_;                   // only touched by the read in flight
  std::deque<grpc::ByteBuffer> writes_;     // guarded by owner_->mu_; front in flight
  bool writes_closed_ = false;              // guarded by owner_->mu_
  bool paused_ = true;                      // guarded by owner_->mu_; no read in flight
  bool drain_wanted_ = false;               // guarded by owner_->mu_
};

std::shared_ptr<UpstreamSession> UpstreamSession::start(grpc::GenericStub& stub, const api::OpenChannel& open,
                                                        const std::string& authorization,
                                                        std::weak_ptr<Listener> listener) {
  std::shared_ptr<UpstreamSession> self(new UpstreamSession());
  auto* reactor = new Reactor(self, std::move(listener));
  if (!authorization.empty()) reactor->ctx.AddMetadata("authorization", authorization);
  std::lock_guard lock(self->mu_);
  self->reactor_ = reactor;
  stub.PrepareBidiStreamingCall(&reactor->ctx, "/sync.v1.Sync/Session", grpc::StubOptions(), reactor);
  api::SessionRequest req;
  *req.mutable_open() = open;
  (void)reactor->send_locked(req);
  reactor->resume_locked();  // the first read
  reactor->StartCall();
  return self;
}

UpstreamSession::~UpstreamSession() = default;

bool UpstreamSession::send(api::SessionRequest msg) {
  std::lock_guard lock(mu_);
  return reactor_ == nullptr || reactor_->send_locked(msg);
}

void UpstreamSession::resume() {
  std::lock_guard lock(mu_);
  if (reactor_ != nullptr) reactor_->resume_locked();
}

void UpstreamSession::cancel() {
  std::lock_guard lock(mu_);
  if (reactor_ != nullptr) reactor_->ctx.TryCancel();
}

}  // namespace bridge::upstream
