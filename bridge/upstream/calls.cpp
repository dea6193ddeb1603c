#include "upstream/calls.h"

#include <chrono>
#include <memory>

#include "auth/token_format.h"

namespace bridge::upstream {

namespace {

// Long enough for a page read or a commit under load; short enough that a
// hung syncd is noticed.
constexpr std::chrono::seconds kDeadline{30};

template <class Request, class Response>
struct Call {
  grpc::ClientContext ctx;
  Request request;
  Response response;
  Done<Response> done;
};

// Starts `method` on a Call that owns everything the call touches until it ends.
template <class Request, class Response, class Method>
void start(const std::string& authorization, Request request, Done<Response> done, Method method) {
  if (!syncd::auth::legal_metadata_value(authorization)) {
    // gRPC aborts the process on an illegal metadata value. Sockets check
    // their tokens where they enter, so this is a last line of defence.
    done(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "malformed token"), Response());
    return;
  }
  auto call = std::make_shared<Call<Request, Response>>();
  call->request = std::move(request);
  call->done = std::move(done);
  call->ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
  if (!authorization.empty()) call->ctx.AddMetadata("authorization", authorization);
  method(&call->ctx, &call->request, &call->response,
         [call](grpc::Status status) { call->done(status, std::move(call->response)); });
}

// Reads a GetSnapshot stream to its end; deletes itself when gRPC is done.
class SnapshotReader final : public grpc::ClientReadReactor<api::SnapshotPage> {
 public:
  SnapshotReader(api::Sync::Stub& stub, const std::string& authorization, api::GetSnapshotRequest request,
                 Done<std::vector<api::SnapshotPage>> done)
      : request_(std::move(request)), done_(std::move(done)) {
    ctx_.set_deadline(std::chrono::system_clock::now() + kDeadline);
    if (!authorization.empty()) ctx_.AddMetadata("authorization", authorization);
    stub.async()->GetSnapshot(&ctx_, &request_, this);
    StartRead(&page_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    pages_.push_back(std::move(page_));
    page_.Clear();
    StartRead(&page_);
  }
  void OnDone(const grpc::Status& status) override {
    done_(status, std::move(pages_));
    delete this;
  }

 private:
  grpc::ClientContext ctx_;
  api::GetSnapshotRequest request_;
  api::SnapshotPage page_;
  std::vector<api::SnapshotPage> pages_;
  Done<std::vector<api::SnapshotPage>> done_;
};

}  // namespace

void get_snapshot(api::Sync::Stub& stub, const std::string& authorization, api::GetSnapshotRequest request,
                  Done<std::vector<api::SnapshotPage>> done) {
  if (!syncd::auth::legal_metadata_value(authorization)) {
    done(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "malformed token"), {});
    return;
  }
  new SnapshotReader(stub, authorization, std::move(request), std::move(done));
}

void get_changes(api::Sync::Stub& stub, const std::string& authorization, api::GetChangesRequest request,
                 Done<api::GetChangesResponse> done) {
  start(authorization, std::move(request), std::move(done),
        [&stub](auto* ctx, auto* req, auto* resp, auto cb) { stub.async()->GetChanges(ctx, req, resp, std::move(cb)); });
}

void channel_info(api::Sync::Stub& stub, const std::string& authorization, api::GetChannelInfoRequest request,
                  Done<api::ChannelInfo> done) {
  start(authorization, std::move(request), std::move(done), [&stub](auto* ctx, auto* req, auto* resp, auto cb) {
    stub.async()->GetChannelInfo(ctx, req, resp, std::move(cb));
  });
}

void push(api::Sync::Stub& stub, const std::string& authorization, api::PushRequest request,
          Done<api::PushResponse> done) {
  start(authorization, std::move(request), std::move(done),
        [&stub](auto* ctx, auto* req, auto* resp, auto cb) { stub.async()->Push(ctx, req, resp, std::move(cb)); });
}

}  // namespace bridge::upstream
