#include "fill.h"

#include <pqxx/pqxx>

#include "api/grpc.h"

namespace syncbench {

std::int64_t fill(const std::string& url, const std::string& channel, std::int64_t n) {
  api::Patch p;
  p.set_id("catchup");
  p.set_client_id("syncbench");
  p.set_op("create_node");
  p.set_node_id("n");
  (*p.mutable_data()->mutable_fields())["label"].set_string_value("Person");
  (*(*p.mutable_data()->mutable_fields())["properties"].mutable_struct_value()->mutable_fields())["name"]
      .set_string_value("Ada Lovelace");
  const std::string body = p.SerializeAsString();
  pqxx::connection c(url);
  pqxx::work tx(c);
  const std::int64_t id =
      tx.exec1("INSERT INTO channels (name) VALUES (" + tx.quote(channel) + ") RETURNING id")[0].as<std::int64_t>();
  tx.exec("INSERT INTO patches (channel_id, version, patch_id, client_id, op, body) SELECT " + std::to_string(id) +
          ", g, 'p' || g, 'syncbench', 'create_node', " +
          tx.quote_raw(reinterpret_cast<const unsigned char*>(body.data()), body.size()) +
          " FROM generate_series(1, " + std::to_string(n) + ") AS g");
  tx.exec("UPDATE channels SET head = " + std::to_string(n) + " WHERE id = " + std::to_string(id));
  tx.commit();
  return id;
}

}  // namespace syncbench
