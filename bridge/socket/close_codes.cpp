#include "socket/close_codes.h"

#include "observe/bridge_metrics.h"

namespace bridge {

using boost::beast::websocket::close_code;

namespace {

void count(grpc::StatusCode code) {
  auto& m = observe::Metrics::get();
  switch (code) {
    case grpc::StatusCode::UNAUTHENTICATED: return m.auth_failed("unauthenticated");
    case grpc::StatusCode::PERMISSION_DENIED: return m.auth_failed("forbidden");
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN: return m.upstream_failures.Increment();
    default: return;
  }
}

}  // namespace

Ending ending_for(grpc::StatusCode code) {
  count(code);
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION: return {"invalid_message", close_code::policy_error};
    case grpc::StatusCode::UNAUTHENTICATED: return {"unauthenticated", close_code::policy_error};
    case grpc::StatusCode::PERMISSION_DENIED: return {"forbidden", close_code::policy_error};
    case grpc::StatusCode::NOT_FOUND: return {"not_found", close_code::policy_error};
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return {"rate_limited", close_code::try_again_later};
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED: return {"unavailable", close_code::try_again_later};
    default: return {"internal", close_code::internal_error};
  }
}

}  // namespace bridge
