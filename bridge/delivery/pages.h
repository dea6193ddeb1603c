#pragma once
// History as the protocol's sync_state pages, shared by a join and a sync
// request.

#include <cstdint>
#include <vector>

#include "api/messages.h"
#include "delivery/sink.h"

namespace bridge::delivery {

// Sends a snapshot's pages to `sink`, each at the snapshot's version V, the
// first marked `snapshot` so the client replaces its state; all say
// has_more, since the log after V follows. Returns V. `pages` is not empty.
std::int64_t send_snapshot(Sink& sink, std::vector<api::SnapshotPage>& pages, bool requested);

// A log page as a sync_state page, its patches moved out of `page`.
api::SyncState history_page(api::GetChangesResponse& page, bool has_more, bool requested);

}  // namespace bridge::delivery
