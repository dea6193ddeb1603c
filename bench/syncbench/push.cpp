// syncbench push: N Session streams over M channels, each keeping a window
// of unacknowledged create_node patches, for a fixed time. Reports accepted
// patches/s and ack latency (send -> ack). Checks that every patch was
// accepted and that each channel's versions are gap-free. Run it on
// channels nothing else writes during the run.
//
// The streams are callback reactors on raw bytes: only acks are decoded;
// the other streams' broadcasts are skipped unread. The load generator
// shares the machine with syncd and PostgreSQL, so what it spends per
// message is taken from what it measures.

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "api/grpc.h"
#include "commands.h"
#include "push_report.h"
#include "push_run.h"

namespace syncbench {
namespace {

using google::protobuf::internal::WireFormatLite;

grpc::ByteBuffer encode(const google::protobuf::Message& msg) {
  grpc::Slice slice(msg.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

constexpr std::uint32_t kLengthDelimited(int field) {
  return WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
}

// Appends the acks of the SessionResponse `in` holds (up to its limit) to
// `acks`, with those of a batch (one level deep) in order.
bool read_acks(google::protobuf::io::CodedInputStream& in, bool in_batch, std::vector<api::Ack>* acks) {
  while (std::uint32_t tag = in.ReadTag()) {
    if (tag == kLengthDelimited(api::SessionResponse::kAckFieldNumber)) {
      if (!WireFormatLite::ReadMessage(&in, &acks->emplace_back())) {
        acks->pop_back();  // not an ack: nothing is answered by it
        return false;
      }
    } else if (tag == kLengthDelimited(api::SessionResponse::kBatchFieldNumber) && !in_batch) {
      int batch_size;
      if (!in.ReadVarintSizeAsInt(&batch_size)) return false;
      const auto batch = in.PushLimit(batch_size);
      while (std::uint32_t inner = in.ReadTag()) {
        if (inner != kLengthDelimited(api::ResponseBatch::kResponsesFieldNumber)) {
          if (!WireFormatLite::SkipField(&in, inner)) return false;
          continue;
        }
        int size;
        if (!in.ReadVarintSizeAsInt(&size)) return false;
        const auto response = in.PushLimit(size);
        if (!read_acks(in, true, acks)) return false;
        in.PopLimit(response);
      }
      in.PopLimit(batch);
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return false;
    }
  }
  return true;
}

// The acks in an encoded SessionResponse; everything else is skipped unread.
bool find_acks(const grpc::ByteBuffer& buffer, std::string* scratch, std::vector<api::Ack>* acks) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return false;
  scratch->clear();
  for (const auto& s : slices) scratch->append(reinterpret_cast<const char*>(s.begin()), s.size());
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(scratch->data()),
                                            static_cast<int>(scratch->size()));
  return read_acks(in, false, acks);
}

// One Session stream. Writes go out one at a time from a queue; patches are
// made while fewer than `window` are unacknowledged: as fast as acks return,
// or, with a rate, when the scheduler says one is due.
class PushStream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  PushStream(grpc::GenericStub& stub, std::string channel, std::string id_prefix, int window, bool paced,
             bool batch, const std::atomic<bool>& measuring)
      : channel(std::move(channel)), id_prefix_(std::move(id_prefix)), window_(window), paced_(paced),
        measuring_(measuring) {
    api::SessionRequest open;
    open.mutable_open()->set_channel(this->channel);
    open.mutable_open()->set_no_history(true);
    open.mutable_open()->set_batch(batch);
    api::Patch* p = request_.mutable_patch();
    p->set_client_id("syncbench");
    p->set_op("create_node");
    (*p->mutable_data()->mutable_fields())["label"].set_string_value("Bench");
    stub.PrepareBidiStreamingCall(&ctx_, "/sync.v1.Sync/Session", {}, this);
    std::lock_guard lock(mu_);
    writes_.push_back(encode(open));
    writing_ = true;
    StartWrite(&writes_.front());
    StartRead(&in_);
    if (!paced_) make_patches();
    StartCall();
  }

  // With a rate: one more patch is due at `due` (latency counts from then).
  void owe(Clock::time_point due) {
    std::lock_guard lock(mu_);
    owed_.push_back(due);
    make_patches();
    write_next();
  }

  // No more patches; the stream ends once every sent patch is answered.
  void stop() {
    std::lock_guard lock(mu_);
    stopping_ = true;
    maybe_close();
  }

  // Waits for the end of the call (cancelling it after `timeout`).
  void wait(std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    if (!done_cv_.wait_for(lock, timeout, [&] { return done_; })) {
      ctx_.TryCancel();
      done_cv_.wait(lock, [&] { return done_; });
    }
  }

  const std::string channel;
  // Read after wait().
  Latencies latencies;
  std::vector<std::int64_t> versions;
  std::int64_t accepted = 0, other = 0, counted = 0;
  bool failed = false;
  std::string error;  // how the call ended, when it failed

 private:
  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    writes_.pop_front();
    writing_ = false;
    if (!ok) {
      failed = true;
      return;
    }
    write_next();
    maybe_close();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    acks_.clear();
    (void)find_acks(in_, &scratch_, &acks_);  // a message that does not decode counts as what decoded of it
    const Clock::time_point now = Clock::now();
    {
      std::lock_guard lock(mu_);
      for (const api::Ack& ack : acks_) answered(ack, now);
    }
    StartRead(&in_);
  }

  void OnDone(const grpc::Status& status) override {
    std::lock_guard lock(mu_);
    if (!status.ok()) {
      failed = true;
      error = std::to_string(status.error_code()) + " " + status.error_message();
    }
    done_ = true;
    done_cv_.notify_all();
  }

  void answered(const api::Ack& ack, Clock::time_point now) {  // requires mu_
    auto it = sent_.find(ack.patch_id());
    if (it == sent_.end()) return;
    if (measuring_) {
      latencies.add(now - it->second);
      ++counted;
    }
    sent_.erase(it);
    if (ack.status() == api::Ack::ACCEPTED) {
      ++accepted;
      versions.push_back(ack.server_version());
    } else {
      ++other;
    }
    --in_flight_;
    make_patches();
    write_next();
    maybe_close();
  }

  void make_patches() {  // requires mu_
    while (!stopping_ && in_flight_ < window_ && (!paced_ || !owed_.empty())) {
      const std::string id = id_prefix_ + std::to_string(next_++);
      api::Patch* p = request_.mutable_patch();
      p->set_id(id);
      p->set_node_id(id);
      if (paced_) {
        sent_[id] = owed_.front();
        owed_.pop_front();
      } else {
        sent_[id] = Clock::now();
      }
      ++in_flight_;
      writes_.push_back(encode(request_));
    }
  }

  void write_next() {  // requires mu_
    if (writing_ || writes_.empty() || failed) return;
    writing_ = true;
    StartWrite(&writes_.front());
  }

  void maybe_close() {  // requires mu_
    if (stopping_ && !closed_ && in_flight_ == 0 && !writing_ && writes_.empty()) {
      closed_ = true;
      StartWritesDone();
    }
  }

  const std::string id_prefix_;
  const int window_;
  const bool paced_;
  const std::atomic<bool>& measuring_;
  grpc::ClientContext ctx_;
  grpc::ByteBuffer in_;   // the read in flight
  std::string scratch_;   // only touched by OnReadDone (reads are serial)
  std::vector<api::Ack> acks_;  // likewise
  api::SessionRequest request_;

  std::mutex mu_;
  std::condition_variable done_cv_;
  std::deque<grpc::ByteBuffer> writes_;  // the front is in flight while writing_
  std::deque<Clock::time_point> owed_;   // due times of patches not yet made
  std::unordered_map<std::string, Clock::time_point> sent_;  // patch id -> send time
  std::int64_t next_ = 0;
  int in_flight_ = 0;
  bool writing_ = false;
  bool stopping_ = false;
  bool closed_ = false;
  bool done_ = false;
};

}  // namespace

int push(const PushOptions& o) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // A few connections, as many clients would have.
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  for (int i = 0; i < std::min(o.streams, 8); ++i) {
    args.SetInt("syncbench.connection", i);  // distinct args: distinct connections
    stubs.push_back(std::make_unique<grpc::GenericStub>(
        grpc::CreateCustomChannel(o.server, grpc::InsecureChannelCredentials(), args)));
  }
  const std::string run_id = std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  std::atomic<bool> measuring{false};
  std::vector<std::unique_ptr<PushStream>> streams;
  for (int s = 0; s < o.streams; ++s) {
    streams.push_back(std::make_unique<PushStream>(*stubs[s % stubs.size()],
                                                   o.channel_prefix + std::to_string(s % o.channels),
                                                   run_id + "-" + std::to_string(s) + "-", o.window, o.rate > 0,
                                                   o.batch, measuring));
  }
  PushTotals t;
  t.seconds = run_push(o, streams, measuring);
  for (auto& st : streams) {
    t.failed_streams += st->failed;
    if (t.first_error.empty()) t.first_error = st->error;
    t.latencies.merge(st->latencies);
    t.counted += st->counted;
    t.accepted += st->accepted;
    t.other += st->other;
    auto& v = t.logs[st->channel];
    v.insert(v.end(), st->versions.begin(), st->versions.end());
  }
  return print_push_report(o, t, "is syncd running at " + o.server + "? (--server or $SYNC_SERVER)");
}

}  // namespace syncbench
