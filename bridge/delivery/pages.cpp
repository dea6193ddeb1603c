#include "delivery/pages.h"

namespace bridge::delivery {

std::int64_t send_snapshot(Sink& sink, std::vector<api::SnapshotPage>& pages, bool requested) {
  const std::int64_t version = pages.front().version();
  for (std::size_t i = 0; i < pages.size(); ++i) {
    api::SyncState state;
    state.set_version(version);
    state.set_has_more(true);
    state.set_requested(requested);
    state.set_snapshot(i == 0);
    state.mutable_patches()->Swap(pages[i].mutable_patches());
    sink.page(state, true);
  }
  return version;
}

api::SyncState history_page(api::GetChangesResponse& page, bool has_more, bool requested) {
  api::SyncState state;
  state.set_version(page.version());
  state.set_has_more(has_more);
  state.set_requested(requested);
  state.mutable_patches()->Swap(page.mutable_patches());
  return state;
}

}  // namespace bridge::delivery
