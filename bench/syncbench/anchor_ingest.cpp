// syncbench ingest-anchor: the rows syncd writes for a create_node patch
// (a log row, a node row, the channel head under a row lock), written
// straight to PostgreSQL by hand-written SQL, with no service in between:
//   per-patch  one transaction per patch from N connections (the naive design)
//   batched    transactions of B patches from one connection (the practical ceiling)

#include <atomic>
#include <iostream>
#include <pqxx/pqxx>
#include <thread>
#include <vector>

#include "api/messages.h"
#include "commands.h"
#include "report.h"

namespace syncbench {
namespace {

std::string body_for(const std::string& id) {
  api::Patch p;
  p.set_id(id);
  p.set_client_id("anchor");
  p.set_op("create_node");
  p.set_node_id(id);
  (*p.mutable_data()->mutable_fields())["label"].set_string_value("Bench");
  return p.SerializeAsString();
}

// Appends one patch's log and state values to the statements being built.
void add_rows(pqxx::transaction_base& tx, std::int64_t channel_id, std::int64_t version, const std::string& id,
              std::string& log, std::string& nodes) {
  const std::string body = body_for(id);
  const std::string ch = std::to_string(channel_id), v = std::to_string(version);
  log += (log.empty() ? "(" : ",(") + ch + "," + v + "," + tx.quote(id) + ",'anchor','create_node'," +
         tx.quote_raw(reinterpret_cast<const unsigned char*>(body.data()), body.size()) + ")";
  nodes += (nodes.empty() ? "(" : ",(") + ch + "," + tx.quote(id) + ",'Bench','{}','{}'," + v + ",'anchor')";
}

void write_batch(pqxx::work& tx, const std::string& channel, const std::string& prefix, std::int64_t first, int n) {
  const pqxx::row r = tx.exec1("SELECT id, head FROM channels WHERE name = " + tx.quote(channel) + " FOR UPDATE");
  const std::int64_t id = r[0].as<std::int64_t>();
  std::int64_t head = r[1].as<std::int64_t>();
  std::string log, nodes;
  for (int i = 0; i < n; ++i) add_rows(tx, id, ++head, prefix + std::to_string(first + i), log, nodes);
  tx.exec("INSERT INTO patches (channel_id, version, patch_id, client_id, op, body) VALUES " + log);
  tx.exec("INSERT INTO nodes (channel_id, node_id, label, properties, stamps, version, client_id) VALUES " + nodes +
          " ON CONFLICT (channel_id, node_id) DO UPDATE SET version = EXCLUDED.version");
  tx.exec("UPDATE channels SET head = " + std::to_string(head) + " WHERE id = " + std::to_string(id));
}

}  // namespace

int ingest_anchor(const AnchorOptions& o) {
  const std::string run = std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  {
    pqxx::connection c(o.database_url);
    pqxx::work tx(c);
    for (int i = 0; i < o.channels; ++i) {
      tx.exec("INSERT INTO channels (name) VALUES ('anchor-" + std::to_string(i) + "') ON CONFLICT DO NOTHING");
    }
    tx.commit();
  }
  const int workers = o.mode == "batched" ? 1 : o.connections;
  const int per_tx = o.mode == "batched" ? o.batch : 1;
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> patches{0};
  std::atomic<int> errors{0};
  std::vector<Latencies> lat(workers);
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      try {
        pqxx::connection c(o.database_url);
        for (std::int64_t i = 0; !stop; i += per_tx) {
          const auto t0 = Clock::now();
          pqxx::work tx(c);
          write_batch(tx, "anchor-" + std::to_string(w % o.channels), run + "-" + std::to_string(w) + "-", i, per_tx);
          tx.commit();
          lat[w].add(Clock::now() - t0);
          patches += per_tx;
        }
      } catch (const std::exception& e) {
        std::cerr << "ingest-anchor: " << e.what() << "\n";
        errors++;
      }
    });
  }
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(o.duration);
  stop = true;
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  Latencies all;
  for (auto& l : lat) all.merge(l);
  const double rate = static_cast<double>(patches.load()) / seconds;
  nlohmann::ordered_json out = {
      {"command", "ingest-anchor"}, {"mode", o.mode}, {"patches_per_s", std::round(rate)},
      {"commit_ms", {{"p50", all.quantile_ms(0.5)}, {"p99", all.quantile_ms(0.99)}}},
      {"parameters", {{"connections", workers}, {"patches_per_transaction", per_tx}, {"channels", o.channels},
                      {"duration_s", std::chrono::duration<double>(o.duration).count()}}},
      {"machine", machine()}};
  if (o.json) {
    std::cout << out.dump() << std::endl;
  } else {
    std::cout << "ingest-anchor (" << o.mode << "): " << std::llround(rate) << " patches/s, " << workers
              << " connection(s), " << per_tx << " patch(es) per transaction; commit p50 " << all.quantile_ms(0.5)
              << " ms, p99 " << all.quantile_ms(0.99) << " ms\n";
  }
  return errors == 0 && patches > 0 ? 0 : 1;
}

}  // namespace syncbench
