#pragma once
// A client's patches on their way to syncd: one Push at a time, so the
// channel stores a socket's patches in the order it sent them; what queues
// meanwhile goes in the next batch. Answers go through the Sequencer, so an
// accepted ack takes its version's place among the broadcasts.
//
// A Push whose outcome is unknown (the call failed) ends the socket: it
// reconnects from its version and resends what is unanswered, and a stored
// patch then comes back `ignored` or in the history.
//
// Not thread-safe: the socket's strand owns it.

#include <boost/container/deque.hpp>
#include <cstddef>
#include <string>
#include <vector>

#include "delivery/sequencer.h"
#include "delivery/sink.h"
#include "delivery/upstream.h"

namespace bridge::delivery {

class Pusher {
 public:
  // Patches taken and not yet answered before the client should not be read
  // (outbox_full()); and the most one Push carries (syncd allows 1000 and 4 MiB).
  static constexpr std::size_t kMaxOutbox = 1000;
  static constexpr int kMaxPushPatches = 500;
  static constexpr std::size_t kMaxPushBytes = 2 << 20;

  // `max_patch_bytes`: larger patches are refused here, as syncd would
  // refuse them, without crossing to syncd (0: no limit).
  Pusher(const std::string& channel, std::size_t max_patch_bytes, Sequencer& seq, Upstream& upstream, Sink& sink)
      : channel_(channel), max_patch_bytes_(max_patch_bytes), seq_(seq), upstream_(upstream), sink_(sink) {}

  void submit(api::Patch patch);
  // Refuses the patch `id` as too_large; `size` says how large.
  void reject_too_large(const std::string& id, const std::string& size);
  // Patches are pushed once the socket is live (its history sent), never before.
  void go() {
    live_ = true;
    next();
  }
  void stop() { stopped_ = true; }
  bool outbox_full() const { return outbox_.size() >= kMaxOutbox; }

 private:
  void next();
  void on_pushed(const grpc::Status& status, const api::PushResponse& response, const std::vector<std::string>& ids);
  void emit(std::vector<Sequencer::Out>& outs);

  const std::string& channel_;
  const std::size_t max_patch_bytes_;
  Sequencer& seq_;
  Upstream& upstream_;
  Sink& sink_;
  boost::container::deque<api::Patch> outbox_;  // not yet pushed
  bool pushing_ = false;
  bool live_ = false;
  bool stopped_ = false;
};

}  // namespace bridge::delivery
