// Authentication, authorization and rate limits against a real syncd with
// --jwt-secret-file and a real PostgreSQL.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "auth/jwt.h"
#include "harness.h"
#include "keys.h"
#include "patches.h"

namespace syncd::testing {
namespace {

using Json = nlohmann::json;
constexpr const char* kSecret = "integration-test-secret";

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A key file for the server, removed with the fixture.
struct SecretFile {
  std::string path;
  explicit SecretFile(const std::string& contents = kSecret, const std::string& stem = "secret")
      : path("/tmp/syncd-test-" + stem + "-" + std::to_string(getpid()) + "-" + std::to_string(now_s())) {
    std::ofstream(path) << contents;
  }
  ~SecretFile() { std::remove(path.c_str()); }
};

std::string token(const std::string& sub, std::vector<std::string> read, std::vector<std::string> write,
                  std::int64_t ttl = 600, Json extra = Json::object(), const std::string& key = kSecret,
                  const std::string& alg = "HS256") {
  Json c = {{"sub", sub}, {"exp", now_s() + ttl}, {"sync", {{"read", read}, {"write", write}}}};
  c.update(extra);
  auto t = auth::sign_token(alg, key, c.dump());
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : "";
}

grpc::Status info(const Syncd& s, const std::string& channel, const std::string& tok) {
  grpc::ClientContext ctx;
  if (!tok.empty()) ctx.AddMetadata("authorization", "Bearer " + tok);
  api::GetChannelInfoRequest req;
  req.set_channel(channel);
  api::ChannelInfo out;
  return s.stub()->GetChannelInfo(&ctx, req, &out);
}

api::Patch node(const std::string& id, const std::string& client_id = "") {
  api::Patch p = testing::create_node(id, id, "Note");
  p.set_client_id(client_id);
  return p;
}

class Auth : public ::testing::Test {
 protected:
  TestDatabase db;
  SecretFile secret;
  std::unique_ptr<Syncd> server;
  void start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--jwt-secret-file", secret.path, "--jwt-leeway", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    server = std::make_unique<Syncd>(db.url(), args);
  }
};

TEST_F(Auth, EachBadTokenIsUnauthenticatedAndSaysWhy) {
  start({"--jwt-issuer", "https://id.example", "--jwt-audience", "syncd"});
  const Json good = {{"iss", "https://id.example"}, {"aud", "syncd"}};
  ASSERT_TRUE(info(*server, "lobby", token("alice", {"*"}, {}, 600, good)).ok());
  EXPECT_NE(server->log().find("authentication on"), std::string::npos);

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "no token"},
      {"not-a-jwt", "malformed"},
      {token("alice", {"*"}, {}, 600, good, "", "none"), "alg \"none\""},
      {token("alice", {"*"}, {}, 600, good, "another-secret"), "bad signature"},
      {token("alice", {"*"}, {}, -5, good), "expired"},
      {token("alice", {"*"}, {}, 600, Json{{"iss", "https://id.example"}, {"aud", "syncd"}, {"nbf", now_s() + 3600}}),
       "not valid until"},
      {token("alice", {"*"}, {}, 600, Json{{"iss", "https://evil.example"}, {"aud", "syncd"}}), "wrong issuer"},
      {token("alice", {"*"}, {}, 600, Json{{"iss", "https://id.example"}, {"aud", "other"}}), "wrong audience"},
  };
  for (const auto& [tok, why] : cases) {
    grpc::Status st = info(*server, "lobby", tok);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << why;
    EXPECT_NE(st.error_message().find(why), std::string::npos) << st.error_message();
    // The same on a Session: it ends before it opens, with the same reason.
    SessionClient s(*server, "lobby", 0, false, "", tok);
    grpc::Status end = s.finish();
    EXPECT_EQ(end.error_code(), grpc::StatusCode::UNAUTHENTICATED) << why;
    EXPECT_NE(end.error_message().find(why), std::string::npos) << end.error_message();
  }
  EXPECT_EQ(db.query_value("SELECT count(*) FROM patches"), "0");
}

TEST_F(Auth, ATokenForOneChannelIsRefusedOnAnotherForReadingAndWriting) {
  start();
  const std::string tok = token("alice", {"alice:*", "lobby"}, {"alice:*"});
  // Allowed: read and write alice:notes (a prefix pattern), read lobby.
  SessionClient mine(*server, "alice:notes", 0, false, "", tok);
  ASSERT_TRUE(mine.wait_opened());
  mine.send(node("n1"));
  auto ack = mine.ack("n1");
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->status(), api::Ack::ACCEPTED);

  // Reading bob:notes: Session, Watch, GetChanges, GetChannelInfo.
  SessionClient theirs(*server, "bob:notes", 0, false, "", tok);
  grpc::Status st = theirs.finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(st.error_message().find("may not read channel \"bob:notes\""), std::string::npos) << st.error_message();
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + tok);
    api::WatchRequest req;
    req.set_channel("bob:notes");
    auto reader = server->stub()->Watch(&ctx, req);
    api::Patch p;
    EXPECT_FALSE(reader->Read(&p));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + tok);
    api::GetChangesRequest req;
    req.set_channel("bob:notes");
    api::GetChangesResponse out;
    EXPECT_EQ(server->stub()->GetChanges(&ctx, req, &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  EXPECT_EQ(info(*server, "bob:notes", tok).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // Writing lobby (readable, not writable): each patch is rejected `forbidden`.
  SessionClient lobby(*server, "lobby", 0, false, "", tok);
  ASSERT_TRUE(lobby.wait_opened());
  lobby.send(node("l1"));
  ack = lobby.ack("l1");
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->status(), api::Ack::REJECTED);
  EXPECT_EQ(ack->code(), "forbidden");
  // Push to a channel it may not write: the whole call is refused.
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + tok);
    api::PushRequest req;
    req.set_channel("bob:notes");
    *req.add_patches() = node("b1");
    api::PushResponse out;
    EXPECT_EQ(server->stub()->Push(&ctx, req, &out).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  EXPECT_EQ(db.query_value("SELECT string_agg(patch_id, ',') FROM patches"), "n1");
}

TEST_F(Auth, CompactDeleteAndSnapshotNeedThePermissionTheyUse) {
  start();
  const std::string writer = token("alice", {"*"}, {"doc"});
  const std::string reader = token("bob", {"doc"}, {});
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + writer);
    api::PushRequest req;
    req.set_channel("doc");
    *req.add_patches() = node("n1", "alice");
    *req.add_patches() = node("n2", "alice");
    api::PushResponse resp;
    ASSERT_TRUE(server->stub()->Push(&ctx, req, &resp).ok());
  }
  // A reader may take a snapshot, but neither compact nor delete.
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + reader);
    api::GetSnapshotRequest req;
    req.set_channel("doc");
    auto pages = server->stub()->GetSnapshot(&ctx, req);
    api::SnapshotPage page;
    ASSERT_TRUE(pages->Read(&page));
    EXPECT_EQ(page.patches_size(), 2);
    EXPECT_TRUE(pages->Finish().ok());
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + reader);
    api::CompactRequest req;
    req.set_channel("doc");
    req.set_through_version(2);
    api::CompactResponse resp;
    EXPECT_EQ(server->stub()->Compact(&ctx, req, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + reader);
    api::DeleteChannelRequest req;
    req.set_channel("doc");
    api::DeleteChannelResponse resp;
    EXPECT_EQ(server->stub()->DeleteChannel(&ctx, req, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;  // no token at all
    api::GetSnapshotRequest req;
    req.set_channel("doc");
    auto pages = server->stub()->GetSnapshot(&ctx, req);
    api::SnapshotPage page;
    EXPECT_FALSE(pages->Read(&page));
    EXPECT_EQ(pages->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(db.query_value("SELECT count(*) FROM patches"), "2");
  EXPECT_EQ(db.query_value("SELECT compacted_through FROM channels WHERE name = 'doc'"), "0");
  // The writer may.
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + writer);
  api::CompactRequest req;
  req.set_channel("doc");
  req.set_through_version(2);
  api::CompactResponse resp;
  EXPECT_TRUE(server->stub()->Compact(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.compacted_through(), 2);
}

TEST_F(Auth, AClientIdMustBeTheTokensSubject) {
  start();
  const std::string tok = token("alice", {"*"}, {"*"});
  SessionClient s(*server, "shared", 0, false, "", tok);
  ASSERT_TRUE(s.wait_opened());
  s.send(node("forged", "bob"));
  s.send(node("filled", ""));
  s.send(node("honest", "alice"));
  auto forged = s.ack("forged"), filled = s.ack("filled"), honest = s.ack("honest");
  ASSERT_TRUE(forged && filled && honest);
  EXPECT_EQ(forged->status(), api::Ack::REJECTED);
  EXPECT_EQ(forged->code(), "forbidden");
  EXPECT_NE(forged->reason().find("clientId"), std::string::npos);
  EXPECT_EQ(filled->status(), api::Ack::ACCEPTED);
  EXPECT_EQ(honest->status(), api::Ack::ACCEPTED);
  EXPECT_EQ(db.query_value("SELECT string_agg(patch_id || '=' || client_id, ',' ORDER BY version) FROM patches"),
            "filled=alice,honest=alice");
  // Push checks the same, patch by patch.
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + tok);
  api::PushRequest req;
  req.set_channel("shared");
  *req.add_patches() = node("p-forged", "mallory");
  *req.add_patches() = node("p-ok", "alice");
  api::PushResponse out;
  ASSERT_TRUE(server->stub()->Push(&ctx, req, &out).ok());
  EXPECT_EQ(out.acks(0).code(), "forbidden");
  EXPECT_EQ(out.acks(1).status(), api::Ack::ACCEPTED);
  EXPECT_EQ(db.query_value("SELECT count(*) FROM patches WHERE client_id <> 'alice'"), "0");
}

TEST_F(Auth, RefreshKeepsASessionAlivePastTheFirstTokensExpiry) {
  start();
  // Both sessions start with a token that expires in 3 s; one refreshes.
  SessionClient refreshed(*server, "ch", 0, false, "", token("alice", {"ch"}, {"ch"}, 3));
  SessionClient expiring(*server, "ch", 0, false, "", token("alice", {"ch"}, {"ch"}, 3));
  ASSERT_TRUE(refreshed.wait_opened());
  ASSERT_TRUE(expiring.wait_opened());
  api::SessionRequest refresh;
  refresh.mutable_refresh()->set_token(token("alice", {"ch"}, {"ch"}, 600));
  ASSERT_TRUE(refreshed.send(refresh));

  grpc::Status end = expiring.finish(std::chrono::seconds(10));
  EXPECT_EQ(end.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(end.error_message().find("expired"), std::string::npos) << end.error_message();
  // Well past the first expiry, the refreshed session still works.
  EXPECT_FALSE(refreshed.ended());
  refreshed.send(node("after-expiry"));
  auto ack = refreshed.ack("after-expiry");
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->status(), api::Ack::ACCEPTED);

  // A refresh naming someone else ends the session.
  refresh.mutable_refresh()->set_token(token("mallory", {"ch"}, {"ch"}, 600));
  refreshed.send(refresh);
  end = refreshed.finish();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(end.error_message().find("same subject"), std::string::npos) << end.error_message();
}

TEST_F(Auth, SessionsPerSubjectAreCapped) {
  start({"--max-sessions-per-subject", "2"});
  const std::string tok = token("alice", {"*"}, {"*"});
  SessionClient a(*server, "x", 0, false, "", tok), b(*server, "y", 0, false, "", tok);
  ASSERT_TRUE(a.wait_opened() && b.wait_opened());
  SessionClient c(*server, "z", 0, false, "", tok);
  grpc::Status st = c.finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(st.error_message().find("2 Session streams"), std::string::npos) << st.error_message();
  SessionClient other(*server, "z", 0, false, "", token("bob", {"*"}, {"*"}));
  EXPECT_TRUE(other.wait_opened()) << "the cap is per subject";
  a.finish_writes();
  a.finish();
  // A slot freed is a slot usable again (the server notices the end at once).
  bool reopened = false;
  for (int i = 0; i < 50 && !reopened; ++i) {
    SessionClient d(*server, "z", 0, false, "", tok);
    reopened = d.wait_opened(std::chrono::milliseconds(500));
    if (!reopened) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(reopened);
}

// A Watch stream from version 0; live() pushes a patch to its channel and
// waits for it, so an open watch is proven open without waiting on a clock.
class WatchClient {
 public:
  WatchClient(const Syncd& server, const std::string& channel, const std::string& tok) : server_(server) {
    if (!tok.empty()) ctx_.AddMetadata("authorization", "Bearer " + tok);
    api::WatchRequest req;
    req.set_channel(channel);
    reader_ = server.stub()->Watch(&ctx_, req);
    channel_ = channel;
  }
  ~WatchClient() {
    if (finished_) return;
    ctx_.TryCancel();
    reader_->Finish();
  }
  // The first patch arrives once `writer` (a token that may write) pushes one.
  bool live(const std::string& writer, const std::string& id) {
    grpc::ClientContext ctx;
    if (!writer.empty()) ctx.AddMetadata("authorization", "Bearer " + writer);
    api::PushRequest req;
    req.set_channel(channel_);
    *req.add_patches() = node(id);
    api::PushResponse out;
    if (!server_.stub()->Push(&ctx, req, &out).ok()) return false;
    api::Patch got;
    return reader_->Read(&got) && got.id() == id;
  }
  grpc::Status refused() {
    api::Patch ignored;
    while (reader_->Read(&ignored)) {}
    finished_ = true;
    return reader_->Finish();
  }

 private:
  const Syncd& server_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<api::Patch>> reader_;
  std::string channel_;
  bool finished_ = false;
};

TEST_F(Auth, WatchesPerSubjectAreCappedExceptForUncappedSubjects) {
  start({"--max-watches-per-subject", "2", "--uncapped-subject", "sync-bridge"});
  const std::string alice = token("alice", {"*"}, {"*"});
  const std::string writer = token("writer", {}, {"*"});
  WatchClient a(*server, "w1", alice), b(*server, "w2", alice);
  ASSERT_TRUE(a.live(writer, "a1"));
  ASSERT_TRUE(b.live(writer, "b1"));
  WatchClient c(*server, "w3", alice);
  const grpc::Status st = c.refused();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(st.error_message().find("--max-watches-per-subject"), std::string::npos) << st.error_message();
  // Sessions are counted apart from watches.
  SessionClient session(*server, "w3", 0, false, "", alice);
  EXPECT_TRUE(session.wait_opened());
  // A bridge's subject watches as many channels as its sockets use.
  const std::string bridge = token("sync-bridge", {"*"}, {});
  std::vector<std::unique_ptr<WatchClient>> feeds;
  for (int i = 0; i < 5; ++i) {
    feeds.push_back(std::make_unique<WatchClient>(*server, "feed" + std::to_string(i), bridge));
    EXPECT_TRUE(feeds.back()->live(writer, "f" + std::to_string(i)));
  }
}

// p99 in ms of `n` acks of one well-behaved writer sending one patch at a time.
double polite_p99(SessionClient& s, const std::string& prefix, int n) {
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    const std::string id = prefix + std::to_string(i);
    const auto t0 = std::chrono::steady_clock::now();
    s.send(node(id));
    auto ack = s.ack(id);
    EXPECT_TRUE(ack && ack->status() == api::Ack::ACCEPTED) << id << (ack ? " " + ack->code() : " no ack");
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::sort(ms.begin(), ms.end());
  return ms[std::min(ms.size() - 1, static_cast<std::size_t>(0.99 * ms.size()))];
}

TEST_F(Auth, ARateLimitedClientGetsRateLimitedAcksWhileOthersKeepWorking) {
  start({"--rate-patches", "100"});
  SessionClient polite(*server, "alice:doc", 0, false, "", token("alice", {"alice:*"}, {"alice:*"}));
  ASSERT_TRUE(polite.wait_opened());
  const double quiet_p99 = polite_p99(polite, "quiet-", 50);

  // The abuser floods its own channel as fast as the session takes it.
  SessionClient abuser(*server, "mallory:spam", 0, false, "", token("mallory", {"mallory:*"}, {"mallory:*"}));
  ASSERT_TRUE(abuser.wait_opened());
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0};
  std::thread flood([&] {
    for (int i = 0; !stop && i < 20000; ++i, ++sent) abuser.send(node("spam-" + std::to_string(i)));
  });
  const double busy_p99 = polite_p99(polite, "busy-", 50);
  stop = true;
  flood.join();
  const int total = sent;
  ASSERT_TRUE(abuser.wait_for(
      [&](const std::vector<api::SessionResponse>& rs) {
        return std::count_if(rs.begin(), rs.end(), [](const auto& r) { return r.has_ack(); }) == total;
      },
      std::chrono::seconds(60)));
  int accepted = 0, limited = 0;
  for (const auto& r : abuser.responses()) {
    if (!r.has_ack()) continue;
    if (r.ack().status() == api::Ack::ACCEPTED) ++accepted;
    if (r.ack().code() == "rate_limited") ++limited;
  }
  std::printf("abuser sent %d: %d accepted, %d rate_limited; polite ack p99 %.1f ms quiet, %.1f ms under abuse\n",
              total, accepted, limited, quiet_p99, busy_p99);
  EXPECT_EQ(accepted + limited, total) << "every patch is answered, none dropped";
  EXPECT_GT(limited, 0);
  EXPECT_EQ(db.query_value("SELECT count(*) FROM patches WHERE client_id = 'mallory'"), std::to_string(accepted));
  // Loose: the abuser must not make the polite client wait long.
  EXPECT_LT(busy_p99, std::max(250.0, 10 * quiet_p99));
}

TEST(AuthPublicKey, AnEs256KeyFileAcceptsItsTokensOnly) {
  TestDatabase db;
  const auto [priv, pub] = key_pair("EC");
  SecretFile key(pub, "ec-public");
  Syncd server(db.url(), {"--jwt-public-key-file", key.path});
  const Json claims = {{"sub", "alice"}, {"exp", now_s() + 600}, {"sync", {{"read", {"*"}}, {"write", Json::array()}}}};
  grpc::Status ok = info(server, "lobby", *auth::sign_token("ES256", priv, claims.dump()));
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  // The public key used as an HMAC secret: the classic algorithm confusion.
  grpc::Status st = info(server, "lobby", *auth::sign_token("HS256", pub, claims.dump()));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(st.error_message().find("accepts ES256"), std::string::npos) << st.error_message();
  const auto [other_priv, other_pub] = key_pair("EC");
  st = info(server, "lobby", *auth::sign_token("ES256", other_priv, claims.dump()));
  EXPECT_NE(st.error_message().find("bad signature"), std::string::npos) << st.error_message();
}

}  // namespace
}  // namespace syncd::testing
