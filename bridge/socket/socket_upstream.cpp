#include "socket/socket_upstream.h"

#include <memory>

namespace bridge {

template <class Response>
delivery::Done<Response> SocketUpstream::on_strand(delivery::Done<Response> done) {
  return [post = post_, done = std::move(done)](const grpc::Status& status, Response&& response) {
    // std::function needs a copyable callable: the answer waits in a shared_ptr.
    auto answer = std::make_shared<Response>(std::move(response));
    post([done, status, answer] { done(status, std::move(*answer)); });
  };
}

void SocketUpstream::channel_info(api::GetChannelInfoRequest request, delivery::Done<api::ChannelInfo> done) {
  upstream::channel_info(stub_, authorization_, std::move(request), on_strand(std::move(done)));
}

void SocketUpstream::get_changes(api::GetChangesRequest request, delivery::Done<api::GetChangesResponse> done) {
  upstream::get_changes(stub_, authorization_, std::move(request), on_strand(std::move(done)));
}

void SocketUpstream::get_snapshot(api::GetSnapshotRequest request,
                                  delivery::Done<std::vector<api::SnapshotPage>> done) {
  upstream::get_snapshot(stub_, authorization_, std::move(request), on_strand(std::move(done)));
}

void SocketUpstream::push(api::PushRequest request, delivery::Done<api::PushResponse> done) {
  upstream::push(stub_, authorization_, std::move(request), on_strand(std::move(done)));
}

}  // namespace bridge
