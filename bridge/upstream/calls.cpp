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

}  // namespace

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
