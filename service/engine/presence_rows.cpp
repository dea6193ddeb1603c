#include "engine/presence_rows.h"

#include "graph/json.h"

namespace syncd::engine {

store::PresenceRow row_of(const std::string& channel, const api::PresenceMember& m) {
  store::PresenceRow r;
  r.channel = channel;
  r.connection_id = m.connection_id();
  r.client_id = m.client_id();
  r.subject = m.subject();
  r.transport = m.transport();
  r.connected_at_ms = m.connected_at();
  r.state_json = graph::to_json(m.state());
  r.delivered = m.delivered_version();
  r.applied = m.applied_version();
  return r;
}

api::PresenceMember member_of(const store::PresenceRow& r) {
  api::PresenceMember m;
  m.set_connection_id(r.connection_id);
  m.set_client_id(r.client_id);
  m.set_subject(r.subject);
  m.set_transport(r.transport);
  m.set_connected_at(r.connected_at_ms);
  if (auto state = graph::struct_from_json(r.state_json)) *m.mutable_state() = std::move(*state);
  m.set_delivered_version(r.delivered);
  m.set_applied_version(r.applied);
  return m;
}

bool same_for_watchers(const store::PresenceRow& a, const store::PresenceRow& b) {
  // PostgreSQL gives jsonb back in one canonical text, so equal states read
  // back as equal text.
  return a.client_id == b.client_id && a.subject == b.subject && a.state_json == b.state_json;
}

}  // namespace syncd::engine
