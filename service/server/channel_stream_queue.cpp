// ChannelStream's write queue: one write in flight (gRPC allows no more),
// what queued behind it going together as one batch to sessions that asked,
// and the time acks and broadcasts wait in it (syncd_patch_stage_seconds).

#include "server/channel_stream.h"

#include "observe/metrics.h"
#include "server/wire.h"

namespace syncd::server {

using Clock = std::chrono::steady_clock;

void ChannelStream::timed(grpc::ByteBuffer msg, Out::Timed kind, Clock::time_point now) {
  Out& out = queue_.emplace_back(std::move(msg));
  out.timed = kind;
  out.since = now;
}

void ChannelStream::drop_unwritten() {
  while (queue_.size() > written_) queue_.pop_back();
}

void ChannelStream::pump() {
  if (writer_ == nullptr || finished_) return;
  if (!writing_ && !queue_.empty()) {
    writing_ = true;
    written_ = 1;
    const grpc::ByteBuffer* out = &queue_.front().msg;
    if (batch_ && queue_.size() > 1) {
      wire::BatchBuilder batch;
      for (const Out& each : queue_) {
        if (!batch.add(each.msg, kMaxBatchBytes)) break;
      }
      if (batch.size() > 1) {
        written_ = batch.size();
        batch_out_ = batch.finish();
        out = &batch_out_;
      }
    }
    observe::Metrics::get().sent_bytes.Increment(static_cast<double>(out->Length()));
    writer_->start_write(*out);
    return;
  }
  if (closing_ && !writing_ && queue_.empty() && (!drain_ || unacked_ == 0)) {
    finished_ = true;
    writer_->finish(status_);
  }
}

void ChannelStream::on_write_done(bool ok) {
  std::lock_guard lock(mu_);
  writing_ = false;
  if (ok) observe_written();
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(written_));
  written_ = 0;
  batch_out_.Clear();
  if (!ok && !closing_) {
    // The client is gone; nothing more can be written.
    closing_ = true;
    status_ = grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    queue_.clear();
  }
  maybe_read();
  maybe_resume();
  pump();
}

void ChannelStream::observe_written() {
  const auto now = Clock::now();
  observe::LatencyBatch acks, broadcasts;
  for (std::size_t i = 0; i < written_; ++i) {
    const Out& out = queue_[i];
    if (out.timed == Out::Timed::kNo) continue;
    (out.timed == Out::Timed::kAck ? acks : broadcasts).add(std::chrono::duration<double>(now - out.since).count());
  }
  auto& m = observe::Metrics::get();
  acks.record(m.stage_ack_write);
  broadcasts.record(m.stage_broadcast_write);
}

}  // namespace syncd::server
