#pragma once
// The GetSnapshot RPC: the channel's state at its head V, read in one
// database snapshot, streamed as pages of at most `limit` patches (and about
// page_bytes), each carrying V. The whole state is read before the first
// page goes out, so the transaction stays short however slowly the client
// reads; memory is the state's size, held until the last page is written.

#include <grpcpp/grpcpp.h>

#include <mutex>

#include "api/grpc.h"
#include "server/context.h"

namespace syncd::server {

class SnapshotCall final : public grpc::ServerWriteReactor<api::SnapshotPage> {
 public:
  SnapshotCall(Context& ctx, grpc::CallbackServerContext* call, const api::GetSnapshotRequest& request);

  void OnWriteDone(bool ok) override;
  void OnDone() override;

 private:
  void on_snapshot(absl::StatusOr<store::Snapshot> snapshot);
  void write_next();  // requires mu_

  Context& ctx_;
  std::size_t limit_;
  std::mutex mu_;
  store::Snapshot snapshot_;  // guarded by mu_
  std::size_t next_ = 0;      // guarded by mu_: the first patch not yet written
  api::SnapshotPage page_;    // guarded by mu_: in flight
};

}  // namespace syncd::server
