#include "socket/token_watch.h"

#include <algorithm>

#include "auth/token_format.h"
#include "upstream/calls.h"
#include "ws/token_claims.h"

namespace bridge {

void TokenWatch::start(std::shared_ptr<void> keep) {
  if (authorization_.empty()) return;
  // syncd checks the token on the socket's first call; here we only learn
  // whom it names and when to close.
  auto claims = read_claims(authorization_);
  if (!claims) return;
  subject_ = claims->subject;
  if (claims->expires) watch(std::move(keep));
}

void TokenWatch::refresh(const std::string& token, const std::string& channel, api::Sync::Stub& stub,
                         delivery::Post post, std::shared_ptr<void> keep) {
  const auto checked = syncd::auth::bearer_token(token);
  if (!checked.ok()) return end_(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, checked.error));
  std::string authorization = syncd::auth::authorization_value(checked.token);
  auto claims = read_claims(authorization);
  if (!claims || claims->subject != subject_) {
    return end_(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                             "a refreshed token must be a JWT for the same subject as the first"));
  }
  api::GetChannelInfoRequest req;
  req.set_channel(channel);
  upstream::channel_info(
      stub, authorization, std::move(req),
      [this, post = std::move(post), keep = std::move(keep), authorization, expires = claims->expires](
          const grpc::Status& status, api::ChannelInfo&&) {
        post([this, keep, status, authorization, expires] {
          if (!status.ok()) return end_(status);
          authorization_ = authorization;
          if (expires) {
            watch(keep);
          } else {
            timer_.cancel();
          }
        });
      });
}

void TokenWatch::watch(std::shared_ptr<void> keep) {
  auto claims = read_claims(authorization_);
  if (!claims || !claims->expires) return;
  // A far expiry (exp may say the year 9999) is waited for a day at a time.
  const auto left = std::min<std::chrono::system_clock::duration>(
      *claims->expires - std::chrono::system_clock::now(), std::chrono::hours(24));
  timer_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(left));
  timer_.async_wait([this, keep = std::move(keep), expires = *claims->expires](boost::system::error_code ec) {
    if (ec) return;  // refreshed, or the socket closed
    auto now = read_claims(authorization_);
    if (now && now->expires && *now->expires > expires) return;  // a refresh raced the timer
    if (std::chrono::system_clock::now() < expires) return watch(keep);
    end_(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      "the token expired; send an auth frame with a new token before the old one "
                      "expires, or reconnect with a new token"));
  });
}

}  // namespace bridge
