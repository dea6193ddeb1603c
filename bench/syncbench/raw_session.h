#pragma once
// A Session opened from version 0 and read as bytes, through the generic
// stub: no objects are built, so a benchmark measures the server rather
// than the client's parser (as COPY's client takes rows as they come).

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "api/grpc.h"

namespace syncbench {

class RawSession {
 public:
  RawSession(const std::shared_ptr<grpc::Channel>& channel, const std::string& name)
      : stub_(channel), call_(stub_.PrepareCall(&ctx_, "/sync.v1.Sync/Session", &cq_)) {
    call_->StartCall(reinterpret_cast<void*>(1));
    wait();
    api::SessionRequest open;
    open.mutable_open()->set_channel(name);
    grpc::Slice slice(open.SerializeAsString());
    grpc::ByteBuffer out(&slice, 1);
    call_->Write(out, reinterpret_cast<void*>(2));
    wait();
  }

  ~RawSession() {
    ctx_.TryCancel();
    call_->Finish(nullptr, reinterpret_cast<void*>(4));
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  // The next SessionResponse's bytes; false once the stream has ended.
  bool next(std::string* bytes) {
    if (!ok_) return false;
    call_->Read(&in_, reinterpret_cast<void*>(3));
    if (!wait()) return false;
    slices_.clear();
    (void)in_.Dump(&slices_);
    bytes->clear();
    for (const auto& s : slices_) bytes->append(reinterpret_cast<const char*>(s.begin()), s.size());
    return true;
  }

 private:
  bool wait() {
    void* tag;
    bool ok = false;
    ok_ = cq_.Next(&tag, &ok) && ok;
    return ok_;
  }

  grpc::GenericStub stub_;
  grpc::CompletionQueue cq_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  bool ok_ = true;
  grpc::ByteBuffer in_;
  std::vector<grpc::Slice> slices_;
};

}  // namespace syncbench
