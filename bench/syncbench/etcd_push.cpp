// syncbench push --target etcd: push's load on etcd. Each of N streams
// keeps `window` KV.Put calls outstanding (etcd acknowledges a Put once it
// is committed to its raft log and fsynced, as syncd acks a committed
// patch), on keys /bench/<channel>/<stream>-<n>, the value being the bytes
// of the patch push sends syncd. Reports puts/s and put latency in push's
// JSON. Checks that every Put succeeded and that their revisions are
// consecutive: run it on an etcd nothing else writes.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "api/grpc.h"
#include "etcd/etcd_rpc.grpc.pb.h"
#include "push_report.h"
#include "push_run.h"

namespace syncbench {
namespace {

// One stream: `window` slots, each holding one Put in flight. Unpaced, a
// slot's completion sends its next Put until stop(); paced, a Put goes when
// one is owed and a slot is free (latency counting from when it was due).
class PutStream {
 public:
  PutStream(etcdserverpb::KV::Stub& stub, std::string key_prefix, std::string value, int window, bool paced,
            const std::atomic<bool>& measuring)
      : stub_(stub), key_prefix_(std::move(key_prefix)), value_(std::move(value)), paced_(paced),
        measuring_(measuring), slots_(static_cast<std::size_t>(window)) {}

  void start() {
    for (auto& slot : slots_) {
      if (paced_) {
        std::lock_guard lock(mu_);
        free_.push_back(&slot);
      } else {
        send(slot, Clock::now());
      }
    }
  }

  // Paced: one more Put is due at `due`.
  void owe(Clock::time_point due) {
    Slot* slot;
    {
      std::lock_guard lock(mu_);
      if (stopping_ || failed) return;
      if (free_.empty()) {
        owed_.push_back(due);
        return;
      }
      slot = free_.back();
      free_.pop_back();
    }
    send(*slot, due);
  }

  // No more Puts; wait() returns once every sent Put is answered.
  void stop() {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }

  void wait(std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    if (!idle_cv_.wait_for(lock, timeout, [&] { return in_flight_ == 0; })) {
      for (auto& slot : slots_) {
        if (slot.ctx) slot.ctx->TryCancel();
      }
      idle_cv_.wait(lock, [&] { return in_flight_ == 0; });
    }
  }

  // Read after wait().
  Latencies latencies;
  std::vector<std::int64_t> revisions;
  std::int64_t accepted = 0, counted = 0;
  bool failed = false;
  std::string error;  // the first failed Put's status

 private:
  struct Slot {
    std::unique_ptr<grpc::ClientContext> ctx;  // one per call: a context cannot be reused
    etcdserverpb::PutRequest request;
    etcdserverpb::PutResponse response;
    Clock::time_point sent;
  };

  // Sends the slot's next Put, due at `due` (latency counts from then).
  void send(Slot& slot, Clock::time_point due) {
    {
      std::lock_guard lock(mu_);
      if (stopping_ || failed) return;
      ++in_flight_;
      slot.ctx = std::make_unique<grpc::ClientContext>();  // replaced only here, under mu_, between calls
    }
    slot.request.set_key(key_prefix_ + std::to_string(next_++));
    slot.request.set_value(value_);
    slot.sent = due;
    stub_.async()->Put(slot.ctx.get(), &slot.request, &slot.response,
                       [this, &slot](grpc::Status status) { answered(slot, status); });
  }

  void answered(Slot& slot, const grpc::Status& status) {
    const auto now = Clock::now();
    std::optional<Clock::time_point> next = now;
    {
      std::lock_guard lock(mu_);
      if (status.ok()) {
        ++accepted;
        revisions.push_back(slot.response.header().revision());
        if (measuring_) {
          latencies.add(now - slot.sent);
          ++counted;
        }
      } else if (!failed) {
        failed = true;
        error = std::to_string(status.error_code()) + " " + status.error_message();
      }
      if (paced_) {
        next.reset();
        if (owed_.empty()) {
          free_.push_back(&slot);
        } else {
          next = owed_.front();
          owed_.pop_front();
        }
      }
    }
    if (next) send(slot, *next);
    std::lock_guard lock(mu_);
    if (--in_flight_ == 0) idle_cv_.notify_all();
  }

  etcdserverpb::KV::Stub& stub_;
  const std::string key_prefix_;
  const std::string value_;
  const bool paced_;
  const std::atomic<bool>& measuring_;
  std::vector<Slot> slots_;  // fixed size: callbacks hold references into it
  // A slot's request, response and send time belong to its one call in
  // flight. Completions of different slots run concurrently: next_ is atomic.
  std::atomic<std::int64_t> next_{0};

  std::mutex mu_;
  std::condition_variable idle_cv_;
  int in_flight_ = 0;  // guarded by mu_, as are the results above
  bool stopping_ = false;  // guarded by mu_
  std::vector<Slot*> free_;             // guarded by mu_; paced: slots with no Put in flight
  std::deque<Clock::time_point> owed_;  // guarded by mu_; paced: due times of Puts not yet sent
};

// The bytes push sends syncd for one patch (create_node, label "Bench"),
// so that both servers store values of the same size.
std::string patch_bytes(const std::string& id) {
  api::Patch p;
  p.set_id(id);
  p.set_node_id(id);
  p.set_client_id("syncbench");
  p.set_op("create_node");
  (*p.mutable_data()->mutable_fields())["label"].set_string_value("Bench");
  return p.SerializeAsString();
}

}  // namespace

int etcd_push(const PushOptions& o) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // A few connections, as push opens to syncd.
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs;
  for (int i = 0; i < std::min(o.streams, 8); ++i) {
    args.SetInt("syncbench.connection", i);  // distinct args: distinct connections
    stubs.push_back(etcdserverpb::KV::NewStub(grpc::CreateCustomChannel(o.etcd, grpc::InsecureChannelCredentials(), args)));
  }
  const std::string run_id = std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  std::atomic<bool> measuring{false};
  std::vector<std::unique_ptr<PutStream>> streams;
  for (int s = 0; s < o.streams; ++s) {
    const std::string id_prefix = run_id + "-" + std::to_string(s) + "-";
    streams.push_back(std::make_unique<PutStream>(
        *stubs[static_cast<std::size_t>(s) % stubs.size()],
        "/bench/" + o.channel_prefix + std::to_string(s % o.channels) + "/" + id_prefix, patch_bytes(id_prefix + "0"),
        o.window, o.rate > 0, measuring));
  }
  for (auto& st : streams) st->start();
  PushTotals t;
  t.seconds = run_push(o, streams, measuring);
  for (auto& st : streams) {
    t.failed_streams += st->failed;
    if (t.first_error.empty()) t.first_error = st->error;
    t.latencies.merge(st->latencies);
    t.counted += st->counted;
    t.accepted += st->accepted;
    auto& v = t.logs["etcd's revisions"];
    v.insert(v.end(), st->revisions.begin(), st->revisions.end());
  }
  return print_push_report(o, t, "is etcd running at " + o.etcd + "? (--etcd)");
}

}  // namespace syncbench
