#pragma once
// A feed item's frames, one slot per dialect: the first socket to send the
// item in a dialect builds the frame, every other socket sends the same
// bytes. So a broadcast is encoded once per dialect per version, never once
// per socket. Thread-safe (sockets on many strands share an item).

#include <array>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

namespace bridge::upstream {

class FrameCache {
 public:
  using Frame = std::shared_ptr<const std::string>;
  static constexpr std::size_t kSlots = 3;  // dialect::Slot

  // The frame in `slot`, built by `build()` (which may return null: this
  // dialect sends nothing for the item) the first time it is asked for.
  template <class Build>
  Frame get(std::size_t slot, Build&& build) const {
    std::call_once(once_[slot], [&] { frames_[slot] = build(); });
    return frames_[slot];
  }

 private:
  mutable std::array<std::once_flag, kSlots> once_;
  mutable std::array<Frame, kSlots> frames_;  // written once, under once_
};

}  // namespace bridge::upstream
