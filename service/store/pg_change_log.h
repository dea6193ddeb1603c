#pragma once
// ChangeLog on PostgreSQL through libpq (see change_log.h for the
// contract). The schema is migrations/*.sql.

#include <memory>
#include <string>

#include "store/change_log.h"
#include "store/pg_batch.h"

namespace syncd::store {

// The LISTEN/NOTIFY channel on which every commit announces its instance
// id, then a line "<channel> <head>" per channel, so that other syncd
// instances fan out too (see engine/head_listener.h).
inline constexpr const char* kHeadNotifyChannel = "syncd_heads";

class PgChangeLog final : public ChangeLog {
 public:
  // Connects lazily, on first use, and again after a connection breaks.
  // `instance` names this process in NOTIFY payloads.
  PgChangeLog(std::string database_url, std::string instance);
  ~PgChangeLog() override;

  absl::StatusOr<CommitResult> commit(const std::vector<Submission>& batch) override;
  absl::StatusOr<Page> read(const std::string& channel, std::int64_t after, std::size_t limit,
                            std::size_t max_bytes) override;
  absl::StatusOr<ChannelState> channel_state(const std::string& channel) override;
  absl::StatusOr<ChannelState> configure(const std::string& channel, const ChannelSettings& settings) override;
  absl::StatusOr<Snapshot> snapshot(const std::string& channel) override;
  absl::StatusOr<CompactResult> compact(const CompactRequest& request, bool wait) override;
  absl::StatusOr<std::vector<std::pair<std::string, std::int64_t>>> retention_due(
      const Retention& defaults) override;
  absl::StatusOr<std::int64_t> expire_ids(std::int64_t seconds, std::size_t limit) override;
  absl::StatusOr<std::optional<std::int64_t>> delete_channel(const std::string& channel) override;

 private:
  struct Connection;
  Connection& conn();
  // Runs `body` on the connection; an idempotent statement, so a failure
  // on a connection opened earlier is retried once on a new one.
  template <typename Body>
  absl::Status with_connection(const char* what, Body&& body);

  std::string url_;
  std::string instance_;
  std::unique_ptr<Connection> conn_;
  ChannelIds channel_ids_;  // rows known to exist
  std::string server_id_;   // read once
};

}  // namespace syncd::store
