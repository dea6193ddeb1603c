// syncbench push: N Session streams over M channels, each keeping a window
// of unacknowledged create_node patches, for a fixed time. Reports accepted
// patches/s and ack latency (send -> ack). Checks that every patch was
// accepted and that each channel's versions are gap-free. Run it on
// channels nothing else writes during the run.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "api/grpc.h"
#include "commands.h"
#include "report.h"

namespace syncbench {
namespace {

struct Stream {
  std::string channel;
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  std::unordered_map<std::string, Clock::time_point> sent;  // patch id -> send time
  Latencies latencies;
  std::vector<std::int64_t> versions;
  std::int64_t accepted = 0, other = 0, counted = 0;
};

}  // namespace

int push(const PushOptions& o) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // A few connections, as many clients would have.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < std::min(o.streams, 8); ++i) {
    args.SetInt("syncbench.connection", i);  // distinct args: distinct connections
    channels.push_back(grpc::CreateCustomChannel(o.server, grpc::InsecureChannelCredentials(), args));
  }
  const std::string run_id = std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  std::atomic<bool> stop{false};
  std::atomic<bool> measuring{false};
  std::vector<std::unique_ptr<Stream>> streams;
  std::vector<std::thread> threads;
  for (int s = 0; s < o.streams; ++s) {
    auto st = std::make_unique<Stream>();
    st->channel = o.channel_prefix + std::to_string(s % o.channels);
    streams.push_back(std::move(st));
  }
  std::atomic<int> failed{0};
  for (int s = 0; s < o.streams; ++s) {
    threads.emplace_back([&, s] {
      Stream& st = *streams[s];
      auto stub = api::Sync::NewStub(channels[s % channels.size()]);
      grpc::ClientContext ctx;
      auto stream = stub->Session(&ctx);
      api::SessionRequest open;
      open.mutable_open()->set_channel(st.channel);
      open.mutable_open()->set_no_history(true);
      stream->Write(open);
      std::thread reader([&] {
        api::SessionResponse msg;
        while (stream->Read(&msg)) {
          if (!msg.has_ack()) continue;
          const Clock::time_point now = Clock::now();
          std::lock_guard lock(st.mu);
          auto it = st.sent.find(msg.ack().patch_id());
          if (it == st.sent.end()) continue;
          if (measuring) {
            st.latencies.add(now - it->second);
            ++st.counted;
          }
          st.sent.erase(it);
          if (msg.ack().status() == api::Ack::ACCEPTED) {
            ++st.accepted;
            st.versions.push_back(msg.ack().server_version());
          } else {
            ++st.other;
          }
          --st.in_flight;
          st.cv.notify_one();
        }
      });
      api::SessionRequest req;
      api::Patch* p = req.mutable_patch();
      p->set_client_id("syncbench");
      p->set_op("create_node");
      (*p->mutable_data()->mutable_fields())["label"].set_string_value("Bench");
      // With --rate, patch i of this stream is due at start + i * interval
      // (streams staggered); its latency counts from then, so a stall that
      // delays sending is measured, not hidden.
      const auto interval = std::chrono::duration<double>(o.rate > 0 ? o.streams / o.rate : 0);
      const auto start = Clock::now() + std::chrono::duration_cast<Clock::duration>(interval * s / o.streams);
      for (std::int64_t i = 0; !stop; ++i) {
        const auto due = start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(i));
        if (o.rate > 0) std::this_thread::sleep_until(due);
        {
          std::unique_lock lock(st.mu);
          st.cv.wait(lock, [&] { return st.in_flight < o.window || stop; });
          if (stop) break;
          ++st.in_flight;
          const std::string id = run_id + "-" + std::to_string(s) + "-" + std::to_string(i);
          p->set_id(id);
          p->set_node_id(id);
          st.sent[id] = o.rate > 0 ? due : Clock::now();
        }
        if (!stream->Write(req)) {
          failed++;
          break;
        }
      }
      // Let the last acks arrive, then end the stream.
      {
        std::unique_lock lock(st.mu);
        st.cv.wait_for(lock, std::chrono::seconds(30), [&] { return st.in_flight == 0; });
      }
      stream->WritesDone();
      reader.join();
      (void)stream->Finish();
    });
  }
  std::this_thread::sleep_for(o.warmup);
  measuring = true;
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(o.duration);
  measuring = false;
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  stop = true;
  for (auto& st : streams) st->cv.notify_all();
  for (auto& t : threads) t.join();

  Latencies all;
  std::int64_t counted = 0, accepted = 0, other = 0;
  std::map<std::string, std::vector<std::int64_t>> per_channel;
  for (auto& st : streams) {
    all.merge(st->latencies);
    counted += st->counted;
    accepted += st->accepted;
    other += st->other;
    auto& v = per_channel[st->channel];
    v.insert(v.end(), st->versions.begin(), st->versions.end());
  }
  // Only this run writes its channels: their accepted versions must be
  // consecutive, with no gap or repeat.
  std::string gaps;
  for (auto& [name, v] : per_channel) {
    std::sort(v.begin(), v.end());
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i] != v[0] + static_cast<std::int64_t>(i)) {
        gaps += name + " ";
        break;
      }
    }
  }
  const double rate = static_cast<double>(counted) / seconds;
  nlohmann::ordered_json out = {
      {"command", "push"},
      {"accepted_per_s", std::round(rate)},
      {"ack_ms", {{"p50", all.quantile_ms(0.5)}, {"p99", all.quantile_ms(0.99)}, {"p999", all.quantile_ms(0.999)}}},
      {"acks_measured", counted},
      {"accepted_total", accepted},
      {"not_accepted", other},
      {"parameters", {{"streams", o.streams}, {"channels", o.channels}, {"window", o.window}, {"rate", o.rate},
                      {"duration_s", std::chrono::duration<double>(o.duration).count()}, {"server", o.server}}},
      {"machine", machine()},
  };
  const bool ok = other == 0 && gaps.empty() && failed == 0 && accepted > 0;
  if (!ok) out["errors"] = "not accepted: " + std::to_string(other) + ", channels with gaps: " + gaps;
  if (o.json) {
    std::cout << out.dump() << std::endl;
  } else {
    std::cout << "push: " << std::llround(rate) << " accepted patches/s over " << o.streams << " streams, "
              << o.channels << " channels, window " << o.window << "; ack p50 " << all.quantile_ms(0.5)
              << " ms, p99 " << all.quantile_ms(0.99) << " ms, p999 " << all.quantile_ms(0.999) << " ms ("
              << counted << " acks measured)\n";
    if (!ok) std::cout << "FAILED: " << out["errors"].get<std::string>() << "\n";
  }
  return ok ? 0 : 1;
}

}  // namespace syncbench
