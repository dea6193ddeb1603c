#include "store/pg_presence.h"

namespace syncd::store {

class PgPresence::Receiver final : public pqxx::notification_receiver {
 public:
  explicit Receiver(pqxx::connection_base& conn) : pqxx::notification_receiver(conn, kPresenceNotifyChannel) {}
  void operator()(const std::string& channel, int /*backend_pid*/) override { channels.insert(channel); }
  std::set<std::string> channels;
};

namespace {

// A PostgreSQL text[] literal of `items`.
std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (const std::string& s : items) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

// A row of the "members" and "changed" statements.
PresenceRow row_from(const std::string& channel, const pqxx::row& r) {
  PresenceRow m;
  m.channel = channel;
  m.connection_id = r[0].c_str();
  m.client_id = r[1].c_str();
  m.subject = r[2].c_str();
  m.transport = r[3].c_str();
  m.connected_at_ms = r[4].as<std::int64_t>();
  m.state_json = r[5].c_str();
  m.delivered = r[6].as<std::int64_t>();
  m.applied = r[7].as<std::int64_t>();
  return m;
}

std::string int_array(const std::vector<std::int64_t>& items) {
  std::string out = "{";
  for (std::int64_t v : items) out += (out.size() > 1 ? "," : "") + std::to_string(v);
  return out + "}";
}

}  // namespace

PgPresence::PgPresence(const std::string& url, std::string instance, std::chrono::seconds ttl)
    : conn_(url),
      receiver_(std::make_unique<Receiver>(conn_)),
      instance_(std::move(instance)),
      ttl_seconds_(static_cast<long long>(ttl.count())) {
  conn_.prepare("presence_upsert",
                "INSERT INTO presence (channel, connection_id, instance_id, client_id, subject, transport, "
                "connected_at, state, delivered, applied) "
                "SELECT c, id, $1, cl, sub, tr, to_timestamp(at / 1000.0), st::jsonb, d, a "
                "FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], "
                "$8::text[], $9::bigint[], $10::bigint[]) AS t(c, id, cl, sub, tr, at, st, d, a) "
                "ON CONFLICT (channel, connection_id) DO UPDATE SET instance_id = excluded.instance_id, "
                "client_id = excluded.client_id, subject = excluded.subject, transport = excluded.transport, "
                "state = excluded.state, delivered = excluded.delivered, applied = excluded.applied, "
                "written_by = pg_current_xact_id()");
  // Only this instance's rows: a connection another instance took over
  // (a bridge that reconnected there) is that instance's to remove.
  conn_.prepare("presence_delete",
                "DELETE FROM presence p USING unnest($1::text[], $2::text[]) AS t(c, id) "
                "WHERE p.channel = t.c AND p.connection_id = t.id AND p.instance_id = $3");
  conn_.prepare("positions_save",
                "INSERT INTO client_positions (channel, client_id, delivered, applied) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) "
                "ON CONFLICT (channel, client_id) DO UPDATE SET "
                "delivered = GREATEST(client_positions.delivered, excluded.delivered), "
                "applied = GREATEST(client_positions.applied, excluded.applied), updated_at = now()");
  conn_.prepare("heartbeat",
                "INSERT INTO presence_instances (instance_id, ttl_seconds) VALUES ($1, $2) "
                "ON CONFLICT (instance_id) DO UPDATE SET seen_at = now(), ttl_seconds = excluded.ttl_seconds "
                "RETURNING xmax = 0");  // true: inserted, i.e. the row was gone
  conn_.prepare("notify", std::string("SELECT pg_notify('") + kPresenceNotifyChannel +
                              "', c) FROM unnest($1::text[]) AS c");
  conn_.prepare("sweep",
                // The heartbeats go first; the rows of exactly those instances
                // follow (and rows of no instance at all). A heartbeat renewed
                // meanwhile is rechecked by its lock and kept, and then so are
                // its rows; a deleted one is noticed by its instance's next
                // write (see write()).
                "WITH gone AS (DELETE FROM presence_instances "
                "WHERE seen_at <= now() - make_interval(secs => ttl_seconds) RETURNING instance_id), "
                "dead AS (DELETE FROM presence p WHERE p.instance_id IN (SELECT instance_id FROM gone) "
                "OR NOT EXISTS (SELECT 1 FROM presence_instances i WHERE i.instance_id = p.instance_id) "
                "RETURNING p.channel) "
                "SELECT pg_notify('" + std::string(kPresenceNotifyChannel) + "', channel) FROM (SELECT DISTINCT channel FROM dead) d");
  // Named clients not seen for 30 days are forgotten, a bounded batch at a time.
  conn_.prepare("positions_expire",
                "DELETE FROM client_positions WHERE ctid = ANY (ARRAY (SELECT ctid FROM client_positions "
                "WHERE updated_at < now() - interval '30 days' LIMIT 1000))");
  conn_.prepare("remove_all",
                "WITH gone AS (DELETE FROM presence WHERE instance_id = $1 RETURNING channel), "
                "me AS (DELETE FROM presence_instances WHERE instance_id = $1) "
                "SELECT pg_notify('" + std::string(kPresenceNotifyChannel) + "', channel) FROM (SELECT DISTINCT channel FROM gone) g");
  conn_.prepare("members",
                "SELECT connection_id, client_id, subject, transport, "
                "(extract(epoch FROM connected_at) * 1000)::bigint, state::text, delivered, applied "
                "FROM presence WHERE channel = $1 ORDER BY connected_at, connection_id");
  conn_.prepare("changed",
                "SELECT connection_id, client_id, subject, transport, "
                "(extract(epoch FROM connected_at) * 1000)::bigint, state::text, delivered, applied "
                "FROM presence WHERE channel = $1 AND written_by >= $2::xid8 ORDER BY connected_at, connection_id");
  conn_.prepare("count_and_xmin",
                "SELECT (SELECT count(*) FROM presence WHERE channel = $1), "
                "pg_snapshot_xmin(pg_current_snapshot())::text, "
                "COALESCE((SELECT head FROM channels WHERE name = $1), 0)");
  conn_.prepare("ids", "SELECT connection_id FROM presence WHERE channel = $1");
  conn_.prepare("head", "SELECT head FROM channels WHERE name = $1");
  conn_.prepare("positions",
                "SELECT p.channel, p.client_id, p.delivered, p.applied FROM client_positions p "
                "JOIN unnest($1::text[], $2::text[]) AS t(c, cl) ON p.channel = t.c AND p.client_id = t.cl");
  pqxx::nontransaction(conn_).exec_prepared("heartbeat", instance_, ttl_seconds_);
}

PgPresence::~PgPresence() = default;

bool PgPresence::write(const std::vector<PresenceRow>& rows,
                       const std::vector<std::pair<std::string, std::string>>& gone,
                       const std::vector<PositionRow>& positions) {
  pqxx::work tx(conn_);
  std::set<std::string> touched;
  // Removals first: a connection that left and came back in one round stays.
  if (!gone.empty()) {
    std::vector<std::string> c, id;
    for (const auto& [channel, connection] : gone) {
      c.push_back(channel), id.push_back(connection);
      touched.insert(channel);
    }
    tx.exec_prepared("presence_delete", text_array(c), text_array(id), instance_);
  }
  if (!rows.empty()) {
    std::vector<std::string> c, id, cl, sub, tr, st;
    std::vector<std::int64_t> at, d, a;
    for (const PresenceRow& r : rows) {
      c.push_back(r.channel), id.push_back(r.connection_id), cl.push_back(r.client_id);
      sub.push_back(r.subject), tr.push_back(r.transport), st.push_back(r.state_json);
      at.push_back(r.connected_at_ms), d.push_back(r.delivered), a.push_back(r.applied);
      if (!r.quiet) touched.insert(r.channel);
    }
    tx.exec_prepared("presence_upsert", instance_, text_array(c), text_array(id), text_array(cl),
                     text_array(sub), text_array(tr), int_array(at), text_array(st), int_array(d),
                     int_array(a));
  }
  if (!positions.empty()) {
    std::vector<std::string> c, cl;
    std::vector<std::int64_t> d, a;
    for (const PositionRow& p : positions) c.push_back(p.channel), cl.push_back(p.client_id), d.push_back(p.delivered), a.push_back(p.applied);
    tx.exec_prepared("positions_save", text_array(c), text_array(cl), int_array(d), int_array(a));
  }
  const bool revived = tx.exec_prepared("heartbeat", instance_, ttl_seconds_)[0][0].as<bool>();
  if (!touched.empty()) {
    tx.exec_prepared("notify", text_array(std::vector<std::string>(touched.begin(), touched.end())));
  }
  tx.commit();
  return revived;
}

std::size_t PgPresence::sweep() {
  pqxx::work tx(conn_);
  const auto r = tx.exec_prepared("sweep");
  tx.exec_prepared("positions_expire");
  tx.commit();
  return r.size();
}

void PgPresence::remove_all() {
  pqxx::work tx(conn_);
  tx.exec_prepared("remove_all", instance_);
  tx.commit();
}

std::vector<PresenceRow> PgPresence::members(const std::string& channel, std::int64_t* head) {
  pqxx::read_transaction tx(conn_);
  std::vector<PresenceRow> out;
  for (const pqxx::row& r : tx.exec_prepared("members", channel)) out.push_back(row_from(channel, r));
  const auto h = tx.exec_prepared("head", channel);
  *head = h.empty() ? 0 : h[0][0].as<std::int64_t>();
  return out;
}

ChannelChanges PgPresence::changes(const std::string& channel, const std::string& since,
                                   const std::function<std::size_t(const std::vector<PresenceRow>&)>& expected) {
  // One snapshot for every statement, so the count, the ids and the
  // watermark agree with the rows.
  pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn_);
  ChannelChanges out;
  for (const pqxx::row& r : tx.exec_prepared("changed", channel, since.empty() ? "0" : since)) {
    out.rows.push_back(row_from(channel, r));
  }
  const auto counted = tx.exec_prepared("count_and_xmin", channel);
  out.count = counted[0][0].as<std::size_t>();
  out.since = counted[0][1].c_str();
  out.head = counted[0][2].as<std::int64_t>();
  if (expected(out.rows) != out.count) {
    std::vector<std::string> ids;
    for (const pqxx::row& r : tx.exec_prepared("ids", channel)) ids.emplace_back(r[0].c_str());
    out.ids = std::move(ids);
  }
  tx.commit();
  return out;
}

std::set<std::string> PgPresence::notified(std::chrono::milliseconds wait) {
  if (wait.count() > 0) {
    conn_.await_notification(0, static_cast<long>(wait.count()) * 1000);
  }
  conn_.get_notifs();
  std::set<std::string> out;
  out.swap(receiver_->channels);
  return out;
}

std::vector<PositionRow> PgPresence::positions(const std::vector<std::pair<std::string, std::string>>& clients) {
  std::vector<std::string> c, cl;
  for (const auto& [channel, client] : clients) c.push_back(channel), cl.push_back(client);
  pqxx::nontransaction tx(conn_);  // one statement: one snapshot, one round trip
  std::vector<PositionRow> out;
  for (const pqxx::row& r : tx.exec_prepared("positions", text_array(c), text_array(cl))) {
    out.push_back({r[0].c_str(), r[1].c_str(), r[2].as<std::int64_t>(), r[3].as<std::int64_t>()});
  }
  return out;
}

}  // namespace syncd::store
