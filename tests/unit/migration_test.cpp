// The dbmate file format, and the bundled migrations themselves.

#include <gtest/gtest.h>

#include "store/migrator.h"

namespace syncd::store {
namespace {

TEST(Migration, SplitsUpAndDown) {
  auto m = parse_migration("20240101120000_add_things.sql",
                           "-- migrate:up\nCREATE TABLE t (x int);\n\n-- migrate:down\nDROP TABLE t;\n");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->version, "20240101120000");
  EXPECT_EQ(m->up, "CREATE TABLE t (x int);\n\n");
  EXPECT_EQ(m->down, "DROP TABLE t;\n\n");
}

TEST(Migration, AcceptsMarkerOptionsAndNoDown) {
  auto m = parse_migration("1_x.sql", "-- migrate:up transaction:false\nSELECT 1;\n");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->up, "SELECT 1;\n\n");
  EXPECT_EQ(m->down, "");
}

TEST(Migration, RefusesBadFiles) {
  EXPECT_FALSE(parse_migration("add_things.sql", "-- migrate:up\n").ok());
  EXPECT_FALSE(parse_migration("1_x.sql", "CREATE TABLE t (x int);\n").ok());
  EXPECT_FALSE(parse_migration("1_x.sql", "-- migrate:upgrade\nSELECT 1;\n").ok());
}

TEST(Migration, BundledMigrationsAreOrderedAndReversible) {
  auto all = bundled_migrations();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_GE(all->size(), 2u);
  for (std::size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].version.size(), 14u) << (*all)[i].name;
    EXPECT_FALSE((*all)[i].up.empty()) << (*all)[i].name;
    EXPECT_FALSE((*all)[i].down.empty()) << (*all)[i].name << " has no down migration";
    if (i > 0) {
      EXPECT_LT((*all)[i - 1].version, (*all)[i].version);
    }
  }
}

}  // namespace
}  // namespace syncd::store
