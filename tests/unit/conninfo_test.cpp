#include "store/conninfo.h"

#include <gtest/gtest.h>

namespace syncd::store {
namespace {

using std::chrono::seconds;

TEST(Conninfo, AddsLivenessSettingsToAUri) {
  EXPECT_EQ(with_liveness_settings("postgresql://syncd@db:5432/sync", seconds(12)),
            "postgresql://syncd@db:5432/sync?connect_timeout=12&keepalives=1&keepalives_idle=4&"
            "keepalives_interval=2&keepalives_count=3&tcp_user_timeout=12000");
}

TEST(Conninfo, AppendsToAnExistingQuery) {
  EXPECT_EQ(with_liveness_settings("postgres://h/db?sslmode=require", seconds(3)),
            "postgres://h/db?sslmode=require&connect_timeout=3&keepalives=1&keepalives_idle=1&"
            "keepalives_interval=1&keepalives_count=3&tcp_user_timeout=3000");
}

TEST(Conninfo, KeepsWhatTheUrlSets) {
  const std::string out =
      with_liveness_settings("postgresql://h/db?connect_timeout=30&tcp_user_timeout=0", seconds(10));
  EXPECT_EQ(out, "postgresql://h/db?connect_timeout=30&tcp_user_timeout=0&keepalives=1&keepalives_idle=3&"
                 "keepalives_interval=1&keepalives_count=3");
  // A key that only ends like one (xconnect_timeout) does not count.
  EXPECT_NE(with_liveness_settings("postgresql://h/db?xconnect_timeout=1", seconds(10)).find("&connect_timeout=10"),
            std::string::npos);
}

TEST(Conninfo, AddsWordsToAKeyValueString) {
  EXPECT_EQ(with_liveness_settings("host=a,b dbname=sync keepalives_idle = 7", seconds(6)),
            "host=a,b dbname=sync keepalives_idle = 7 connect_timeout=6 keepalives=1 keepalives_interval=1 "
            "keepalives_count=3 tcp_user_timeout=6000");
}

TEST(Conninfo, MultiHostUrisKeepTheirTargetAttributes) {
  EXPECT_EQ(with_liveness_settings("postgresql://a:5432,b:5432/sync?target_session_attrs=read-write", seconds(1)),
            "postgresql://a:5432,b:5432/sync?target_session_attrs=read-write&connect_timeout=1&keepalives=1&"
            "keepalives_idle=1&keepalives_interval=1&keepalives_count=3&tcp_user_timeout=1000");
}

}  // namespace
}  // namespace syncd::store
