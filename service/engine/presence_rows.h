#pragma once
// Presence members as the API shows them and as PostgreSQL stores them
// (the state as JSON text), and what of a member its watchers see change.

#include <string>

#include "api/messages.h"
#include "store/presence_row.h"

namespace syncd::engine {

store::PresenceRow row_of(const std::string& channel, const api::PresenceMember& m);
api::PresenceMember member_of(const store::PresenceRow& r);

// Who the member is and its state, not its position (which moves all the
// time, raises no event, and is read with Presence::list()). Of rows read
// from the database.
bool same_for_watchers(const store::PresenceRow& a, const store::PresenceRow& b);

}  // namespace syncd::engine
