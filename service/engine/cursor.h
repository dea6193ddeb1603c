#pragma once
// Where one subscriber stands in a channel's log.
//
// Invariant: the subscriber has been handed exactly the versions
// (start, position], each once, in order. A patch is handed over only when
// it is the next version; anything later means the subscriber is behind and
// the versions in between must come from the log. Live patches and pages read
// from the log go through the same gate, so switching between the two can
// never skip or repeat a version. Not thread-safe: the owner locks.

#include <algorithm>
#include <cstdint>

namespace syncd::engine {

class Cursor {
 public:
  explicit Cursor(std::int64_t position) : position_(position), known_head_(position) {}

  std::int64_t position() const { return position_; }
  std::int64_t known_head() const { return known_head_; }

  // True when `version` is the next one: the caller hands it over now.
  // A later version only records that the log holds more.
  bool advance(std::int64_t version) {
    note_head(version);
    if (version != position_ + 1) return false;
    position_ = version;
    return true;
  }

  // The channel is known to have reached `head` (a commit the caller could
  // not take now, another instance's commit, or a page's head).
  void note_head(std::int64_t head) { known_head_ = std::max(known_head_, head); }

  // The subscriber was handed a snapshot: the state at `version`, which
  // replaces everything it had. `version` is at most the head, and at least
  // position() unless the subscriber started from a version the channel
  // never reached (then it started at the head, see ChannelStream::start).
  void restart_at(std::int64_t version) {
    position_ = version;
    note_head(version);
  }

  // Versions past position() exist that only the log can provide.
  bool behind() const { return known_head_ > position_; }

 private:
  std::int64_t position_;
  std::int64_t known_head_;
};

}  // namespace syncd::engine
