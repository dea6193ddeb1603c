// syncbench watch-fanout: gRPC watch fan-out, syncd beside etcd. R watchers
// on one log (syncd: R Watch streams on one fresh channel from version 0;
// etcd: R Watch streams, each one watch on the key prefix /bench/<channel>/),
// W writers at a fixed total rate (syncd: Push calls; etcd: KV.Put calls).
// Reports deliveries/s and write -> receive latency, and checks that every
// watcher received every write, in the log's order (syncd's versions, etcd's
// revisions, consecutive: only this run writes its channel / the etcd).
//
// Writers and watchers are in this one process: write k's send time is kept
// in a table indexed by k (carried in the patch id or the key), read with the
// same clock on receipt.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>

#include "api/grpc.h"
#include "commands.h"
#include "etcd/etcd_rpc.grpc.pb.h"
#include "report.h"

namespace syncbench {
namespace {

// Send times of writes, by k; written once by the scheduler before write k
// is sent, read by watchers after they receive it.
class SendTimes {
 public:
  explicit SendTimes(std::size_t n) : ns_(n) {}
  std::size_t size() const { return ns_.size(); }
  void set(std::size_t k) { ns_[k] = Clock::now().time_since_epoch().count(); }
  Clock::time_point at(std::size_t k) const { return Clock::time_point(Clock::duration(ns_[k].load())); }

 private:
  std::vector<std::atomic<Clock::rep>> ns_;
};

// k from "<anything>/<k>" or "<anything>-<k>"; -1 when malformed.
std::int64_t index_of(const std::string& s, const SendTimes& times) {
  const auto cut = s.find_last_of("/-");
  if (cut == std::string::npos) return -1;
  const long long k = std::atoll(s.c_str() + cut + 1);
  return k >= 0 && static_cast<std::size_t>(k) < times.size() ? k : -1;
}

// What one watcher saw. Updated only from its own reads, which are serial.
struct Tally {
  Latencies latencies;
  std::atomic<std::int64_t> received{0};
  std::int64_t last = 0;  // the last version / revision seen
  bool in_order = true;   // each one the previous plus one
  bool ready = false, done = false, failed = false;  // guarded by mu
  std::string error;                                  // guarded by mu
  std::mutex mu;
  std::condition_variable cv;

  void see(std::int64_t position, std::int64_t k, const SendTimes& times) {
    if (k < 0 || (last != 0 && position != last + 1)) in_order = false;
    last = position;
    if (k >= 0) latencies.add(Clock::now() - times.at(static_cast<std::size_t>(k)));
    ++received;
  }
  void set(bool Tally::*flag, const grpc::Status* status = nullptr) {
    std::lock_guard lock(mu);
    this->*flag = true;
    if (status != nullptr && !status->ok() && status->error_code() != grpc::StatusCode::CANCELLED) {
      failed = true;
      error = std::to_string(status->error_code()) + " " + status->error_message();
    }
    cv.notify_all();
  }
  // Waits for `flag` or the end of the call; false on timeout.
  bool wait(bool Tally::*flag, Clock::time_point deadline) {
    std::unique_lock lock(mu);
    return cv.wait_until(lock, deadline, [&] { return this->*flag || done; });
  }
};

// A syncd Watch stream from version 0 of a fresh channel: it misses nothing
// written after it, however late the server registers it.
class SyncdWatcher final : public grpc::ClientReadReactor<api::Patch> {
 public:
  SyncdWatcher(api::Sync::Stub& stub, const std::string& channel, const SendTimes& times) : times_(times) {
    request_.set_channel(channel);
    stub.async()->Watch(&ctx, &request_, this);
    StartRead(&in_);
    StartCall();
    tally.set(&Tally::ready);
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    tally.see(in_.server_version(), index_of(in_.id(), times_), times_);
    StartRead(&in_);
  }
  void OnDone(const grpc::Status& s) override { tally.set(&Tally::done, &s); }

  grpc::ClientContext ctx;
  Tally tally;

 private:
  const SendTimes& times_;
  api::WatchRequest request_;
  api::Patch in_;
};

// An etcd Watch stream holding one watch on [prefix, prefix + 1); ready once
// etcd answers `created`.
class EtcdWatcher final : public grpc::ClientBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  EtcdWatcher(etcdserverpb::Watch::Stub& stub, const std::string& prefix, const SendTimes& times) : times_(times) {
    auto* create = request_.mutable_create_request();
    create->set_key(prefix);
    std::string end = prefix;
    ++end.back();
    create->set_range_end(end);
    stub.async()->Watch(&ctx, this);
    StartWrite(&request_);
    StartRead(&in_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (in_.created()) tally.set(&Tally::ready);
    for (const auto& e : in_.events()) tally.see(e.kv().mod_revision(), index_of(e.kv().key(), times_), times_);
    StartRead(&in_);
  }
  void OnWriteDone(bool) override {}
  void OnDone(const grpc::Status& s) override { tally.set(&Tally::done, &s); }

  grpc::ClientContext ctx;
  Tally tally;

 private:
  const SendTimes& times_;
  etcdserverpb::WatchRequest request_;
  etcdserverpb::WatchResponse in_;
};

// Writes as unary calls; counts answers. A write's request and response
// live in a heap block freed by its callback.
class Writers {
 public:
  Writers(const WatchFanoutOptions& o, const std::string& channel) : o_(o), channel_(channel) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    for (int i = 0; i < o.writers; ++i) {
      args.SetInt("syncbench.connection", 1000 + i);  // a connection per writer
      auto connection = grpc::CreateCustomChannel(o.target == "etcd" ? o.etcd : o.server,
                                                  grpc::InsecureChannelCredentials(), args);
      connection->GetState(true);  // connect now, so that the first writes do not wait for it
      if (o.target == "etcd") {
        kv_.push_back(etcdserverpb::KV::NewStub(connection));
      } else {
        sync_.push_back(api::Sync::NewStub(connection));
      }
    }
  }

  void write(std::int64_t k) {
    const std::string id = std::to_string(k);
    const std::size_t w = static_cast<std::size_t>(k % o_.writers);
    if (o_.target == "etcd") {
      auto* c = new Call<etcdserverpb::PutRequest, etcdserverpb::PutResponse>;
      c->request.set_key("/bench/" + channel_ + "/" + id);
      c->request.set_value(std::string(64, 'v'));
      kv_[w]->async()->Put(&c->ctx, &c->request, &c->response, [this, c](grpc::Status s) { answered(c, s.ok()); });
    } else {
      auto* c = new Call<api::PushRequest, api::PushResponse>;
      c->request.set_channel(channel_);
      api::Patch* p = c->request.add_patches();
      p->set_id("w-" + id);
      p->set_node_id("w-" + id);
      p->set_client_id("syncbench");
      p->set_op("create_node");
      (*p->mutable_data()->mutable_fields())["label"].set_string_value("Bench");
      sync_[w]->async()->Push(&c->ctx, &c->request, &c->response, [this, c](grpc::Status s) {
        answered(c, s.ok() && c->response.acks_size() == 1 && c->response.acks(0).status() == api::Ack::ACCEPTED);
      });
    }
  }

  // Waits (up to `timeout`) for every write to be answered; the number accepted.
  std::int64_t wait(std::int64_t sent, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return answered_ == sent; });
    return accepted_;
  }

 private:
  template <class Req, class Resp>
  struct Call {
    grpc::ClientContext ctx;
    Req request;
    Resp response;
  };
  template <class C>
  void answered(C* c, bool ok) {
    delete c;
    std::lock_guard lock(mu_);
    ++answered_;
    accepted_ += ok;
    cv_.notify_all();
  }

  const WatchFanoutOptions& o_;
  const std::string channel_;
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> kv_;
  std::vector<std::unique_ptr<api::Sync::Stub>> sync_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::int64_t answered_ = 0, accepted_ = 0;  // guarded by mu_
};

}  // namespace

int watch_fanout(const WatchFanoutOptions& o) {
  const std::string channel =
      o.channel_prefix + std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  const auto total = static_cast<std::int64_t>(o.rate * std::chrono::duration<double>(o.duration).count());
  SendTimes times(static_cast<std::size_t>(total));
  const long rss_before = o.server_pid > 0 ? rss_kib(o.server_pid) : -1;
  // Watchers share a few connections, as push's streams do.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::vector<std::unique_ptr<etcdserverpb::Watch::Stub>> watch_stubs;
  std::vector<std::unique_ptr<api::Sync::Stub>> sync_stubs;
  for (int i = 0; i < std::min(o.watchers, 8); ++i) {
    args.SetInt("syncbench.connection", i);
    if (o.target == "etcd") {
      watch_stubs.push_back(etcdserverpb::Watch::NewStub(grpc::CreateCustomChannel(o.etcd, grpc::InsecureChannelCredentials(), args)));
    } else {
      sync_stubs.push_back(api::Sync::NewStub(grpc::CreateCustomChannel(o.server, grpc::InsecureChannelCredentials(), args)));
    }
  }
  std::vector<std::unique_ptr<SyncdWatcher>> syncd_watchers;
  std::vector<std::unique_ptr<EtcdWatcher>> etcd_watchers;
  std::vector<Tally*> tallies;
  std::vector<grpc::ClientContext*> contexts;
  for (std::size_t i = 0; i < static_cast<std::size_t>(o.watchers); ++i) {
    if (o.target == "etcd") {
      etcd_watchers.push_back(std::make_unique<EtcdWatcher>(*watch_stubs[i % watch_stubs.size()], "/bench/" + channel + "/", times));
      tallies.push_back(&etcd_watchers.back()->tally);
      contexts.push_back(&etcd_watchers.back()->ctx);
    } else {
      syncd_watchers.push_back(std::make_unique<SyncdWatcher>(*sync_stubs[i % sync_stubs.size()], channel, times));
      tallies.push_back(&syncd_watchers.back()->tally);
      contexts.push_back(&syncd_watchers.back()->ctx);
    }
  }
  std::string error;
  const auto ready_by = Clock::now() + std::chrono::seconds(30);
  for (auto* t : tallies) {
    if (!t->wait(&Tally::ready, ready_by)) error = "a watcher was not created within 30 s";
  }
  Writers writers(o, channel);
  std::this_thread::sleep_for(o.settle);  // syncd says nothing when a Watch is registered
  const long rss_with_watchers = o.server_pid > 0 ? rss_kib(o.server_pid) : -1;
  const auto start = Clock::now();
  const auto interval = std::chrono::duration<double>(1.0 / o.rate);
  std::int64_t k = 0;
  // Wakes every 200 µs and sends every write due by then (see push's scheduler).
  while (k < total && error.empty()) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    const auto now = Clock::now();
    for (; k < total && start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(k)) <= now; ++k) {
      times.set(static_cast<std::size_t>(k));
      writers.write(k);
    }
  }
  const std::int64_t accepted = writers.wait(k, std::chrono::seconds(30));
  // Every watcher should now receive all `accepted` writes.
  const auto drain_by = Clock::now() + std::chrono::seconds(30);
  for (auto* t : tallies) {
    while (t->received < accepted && Clock::now() < drain_by) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto* c : contexts) c->TryCancel();
  for (auto* t : tallies) t->wait(&Tally::done, Clock::now() + std::chrono::seconds(30));

  Latencies all;
  std::int64_t deliveries = 0;
  int incomplete = 0, out_of_order = 0, failed = 0;
  for (auto* t : tallies) {
    all.merge(t->latencies);
    deliveries += t->received;
    incomplete += t->received != accepted;
    out_of_order += !t->in_order;
    if (t->failed) {
      ++failed;
      if (error.empty()) error = "a watcher failed: " + t->error;
    }
  }
  if (accepted != total) error += (error.empty() ? "" : "; ") + std::to_string(total - accepted) + " writes not accepted";
  if (incomplete > 0) error += (error.empty() ? "" : "; ") + std::to_string(incomplete) + " watchers incomplete";
  if (out_of_order > 0) error += (error.empty() ? "" : "; ") + std::to_string(out_of_order) + " watchers out of order";
  nlohmann::ordered_json out = {
      {"command", "watch-fanout"},
      {"target", o.target},
      {"deliveries_per_s", std::round(static_cast<double>(deliveries) / seconds)},
      {"latency_ms", {{"p50", all.quantile_ms(0.5)}, {"p99", all.quantile_ms(0.99)}, {"p999", all.quantile_ms(0.999)}}},
      {"writes", accepted},
      {"deliveries", deliveries},
      {"watchers_complete_in_order", o.watchers - std::max(incomplete, out_of_order)},
      {"parameters", {{"watchers", o.watchers}, {"writers", o.writers}, {"rate", o.rate},
                      {"duration_s", std::chrono::duration<double>(o.duration).count()},
                      {"server", o.target == "etcd" ? o.etcd : o.server}}},
      {"machine", machine()},
  };
  if (o.server_pid > 0) {
    if (rss_before < 0 || rss_with_watchers < 0) {
      error += (error.empty() ? "" : "; ") + std::string("cannot read the memory of --server-pid ") +
               std::to_string(o.server_pid);
    } else {
      out["server_rss_kib"] = {{"before", rss_before}, {"with_watchers", rss_with_watchers}};
      out["bytes_per_watcher"] = std::round((rss_with_watchers - rss_before) * 1024.0 / o.watchers);
    }
  }
  if (!error.empty()) out["errors"] = error + " (is " + o.target + " running at " + (o.target == "etcd" ? o.etcd : o.server) + "?)";
  if (o.json) {
    std::cout << out.dump() << std::endl;
  } else {
    std::cout << "watch-fanout (" << o.target << "): " << std::llround(static_cast<double>(deliveries) / seconds)
              << " deliveries/s to " << o.watchers
              << " watchers, " << accepted << " writes; write -> receive p50 " << all.quantile_ms(0.5) << " ms, p99 "
              << all.quantile_ms(0.99) << " ms\n";
    if (!error.empty()) std::cout << "FAILED: " << out["errors"].get<std::string>() << "\n";
  }
  return error.empty() ? 0 : 1;
}

}  // namespace syncbench
