// The batch statements' plans on a new deployment's empty tables. Each plan
// is made once per connection and kept until the next ANALYZE; one that
// scans a whole table would make every batch slower as the table grows.

#include <gtest/gtest.h>

#include <string>

#include "harness.h"
#include "store/pg_batch.h"
#include "store/pq.h"

namespace syncd::testing {
namespace {

TEST(Plans, BatchStatementsLookRowsUpByIndexOnEmptyTables) {
  TestDatabase db;
  auto conn = store::pq::connect(db.url());
  store::configure_session(conn.get());
  store::prepare_batch_statements(conn.get());

  auto statements = store::pq::exec(
      conn.get(), "SELECT name, cardinality(parameter_types) FROM pg_prepared_statements ORDER BY name");
  const int n = PQntuples(statements.get());
  ASSERT_GE(n, 10);
  for (int i = 0; i < n; ++i) {
    const std::string name(store::pq::text(statements.get(), i, 0));
    std::string call = "EXPLAIN EXECUTE " + name + "(";
    for (std::int64_t p = 0; p < store::pq::int64(statements.get(), i, 1); ++p) call += p ? ", NULL" : "NULL";
    call += ")";
    auto plan = store::pq::exec(conn.get(), call.c_str());
    std::string text;
    for (int row = 0; row < PQntuples(plan.get()); ++row) text.append(store::pq::text(plan.get(), row, 0)) += "\n";
    EXPECT_EQ(text.find("Seq Scan"), std::string::npos) << name << " scans a whole table:\n" << text;
    EXPECT_EQ(text.find("Hash Join"), std::string::npos) << name << " hashes a whole table:\n" << text;
  }
}

}  // namespace
}  // namespace syncd::testing
