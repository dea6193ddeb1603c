#include "harness.h"

#include <fcntl.h>
#include <google/protobuf/util/message_differencer.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <pqxx/pqxx>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "graph/graph.h"
#include "graph/json.h"

namespace syncd::testing {
namespace {

std::string env_or_throw(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    throw std::runtime_error(std::string(name) + " is not set: run the tests through scripts/test");
  }
  return v;
}

// The admin URL with its database name replaced.
std::string with_database(const std::string& url, const std::string& db) {
  const std::size_t slash = url.rfind('/');
  const std::size_t query = url.find('?', slash);
  return url.substr(0, slash + 1) + db + (query == std::string::npos ? "" : url.substr(query));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t spawn(const std::vector<std::string>& args, const std::string& log_path) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

std::string temp_path(const std::string& stem) {
  static std::atomic<int> n{0};
  return "/tmp/syncd-test-" + std::to_string(getpid()) + "-" + std::to_string(n++) + "-" + stem;
}

}  // namespace

TestDatabase::TestDatabase(bool migrate) {
  admin_url_ = env_or_throw("SYNC_TEST_DATABASE_URL");
  static std::atomic<int> counter{0};
  name_ = "t_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
  {
    pqxx::connection c(admin_url_);
    pqxx::nontransaction tx(c);
    tx.exec("DROP DATABASE IF EXISTS " + name_);
    tx.exec("CREATE DATABASE " + name_);
  }
  url_ = with_database(admin_url_, name_);
  if (migrate) {
    const CommandResult r = run_syncd({"migrate", "up", "--database-url", url_});
    if (r.status != 0) throw std::runtime_error("migrate up failed: " + r.output);
  }
}

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection c(admin_url_);
    pqxx::nontransaction tx(c);
    tx.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception&) {
    // Left for the throwaway cluster to take with it.
  }
}

std::vector<std::vector<std::string>> TestDatabase::query(const std::string& sql) const {
  pqxx::connection c(url_);
  pqxx::nontransaction tx(c);
  std::vector<std::vector<std::string>> out;
  for (const pqxx::row& r : tx.exec(sql)) {
    std::vector<std::string> row;
    for (const pqxx::field& f : r) row.push_back(f.is_null() ? "" : f.c_str());
    out.push_back(std::move(row));
  }
  return out;
}

std::string TestDatabase::query_value(const std::string& sql) const {
  auto rows = query(sql);
  return rows.empty() || rows[0].empty() ? "" : rows[0][0];
}

void TestDatabase::exec(const std::string& sql) const {
  pqxx::connection c(url_);
  pqxx::nontransaction tx(c);
  tx.exec(sql);
}

void TestDatabase::set_allow_connections(bool allow) const {
  pqxx::connection c(admin_url_);
  pqxx::nontransaction tx(c);
  tx.exec("ALTER DATABASE " + name_ + " ALLOW_CONNECTIONS " + (allow ? "true" : "false"));
  if (!allow) {
    tx.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = " + tx.quote(name_));
  }
}

CommandResult run_syncd(const std::vector<std::string>& args) {
  std::vector<std::string> argv{env_or_throw("SYNCD_BIN")};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string log = temp_path("cmd.log");
  const int status = wait_exit(spawn(argv, log));
  CommandResult r{status, read_file(log)};
  unlink(log.c_str());
  return r;
}

Syncd::Syncd(const std::string& database_url, std::vector<std::string> extra_args, int grpc_port) {
  log_path_ = temp_path("syncd.log");
  std::vector<std::string> argv{env_or_throw("SYNCD_BIN"), "serve", "--database-url", database_url,
                                "--grpc-listen", "127.0.0.1:" + std::to_string(grpc_port),
                                "--http-listen", "127.0.0.1:0"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  pid_ = spawn(argv, log_path_);
  const std::regex ready(R"(serving gRPC on port (\d+).*HTTP on port (\d+))");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch m;
    const std::string text = read_file(log_path_);
    if (std::regex_search(text, m, ready)) {
      grpc_port_ = std::stoi(m[1]);
      http_port_ = std::stoi(m[2]);
      return;
    }
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("syncd exited at start:\n" + text);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("syncd did not start within 20 s:\n" + read_file(log_path_));
}

Syncd::~Syncd() {
  if (pid_ > 0) kill9();
  unlink(log_path_.c_str());
}

std::shared_ptr<grpc::Channel> Syncd::channel() const {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own per client
  return grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
}

std::unique_ptr<api::Sync::Stub> Syncd::stub() const { return api::Sync::NewStub(channel()); }

int Syncd::terminate() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const int status = wait_exit(pid_);
  pid_ = -1;
  return status;
}

void Syncd::kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  wait_exit(pid_);
  pid_ = -1;
}

std::string Syncd::log() const { return read_file(log_path_); }

SessionClient::SessionClient(const Syncd& server, const std::string& channel, std::int64_t from_version,
                             bool no_history, const std::string& client_id, const std::string& token)
    : stub_(server.stub()) {
  if (!token.empty()) ctx_.AddMetadata("authorization", "Bearer " + token);
  stream_ = stub_->Session(&ctx_);
  api::SessionRequest open;
  open.mutable_open()->set_channel(channel);
  open.mutable_open()->set_from_version(from_version);
  open.mutable_open()->set_no_history(no_history);
  open.mutable_open()->set_client_id(client_id);
  stream_->Write(open);
  reader_ = std::thread([this] {
    api::SessionResponse msg;
    while (stream_->Read(&msg)) {
      std::lock_guard lock(mu_);
      responses_.push_back(msg);
      cv_.notify_all();
    }
    std::lock_guard lock(mu_);
    ended_ = true;
    cv_.notify_all();
  });
}

SessionClient::~SessionClient() {
  ctx_.TryCancel();
  if (reader_.joinable()) reader_.join();
}

bool SessionClient::wait_opened(std::chrono::milliseconds timeout) {
  return wait_for(
      [](const auto& rs) {
        for (const auto& r : rs) {
          if (r.has_opened()) return true;
        }
        return false;
      },
      timeout);
}

bool SessionClient::send(const api::Patch& patch) {
  api::SessionRequest req;
  *req.mutable_patch() = patch;
  return send(req);
}

bool SessionClient::send(const api::SessionRequest& request) {
  std::lock_guard lock(write_mu_);
  return stream_->Write(request);
}

void SessionClient::finish_writes() {
  std::lock_guard lock(write_mu_);
  stream_->WritesDone();
}

std::optional<api::Ack> SessionClient::ack(const std::string& patch_id, std::chrono::milliseconds timeout) {
  std::optional<api::Ack> found;
  wait_for(
      [&](const auto& rs) {
        for (const auto& r : rs) {
          if (r.has_ack() && r.ack().patch_id() == patch_id) {
            found = r.ack();
            return true;
          }
        }
        return false;
      },
      timeout);
  return found;
}

bool SessionClient::wait_for(const std::function<bool(const std::vector<api::SessionResponse>&)>& pred,
                             std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return pred(responses_) || ended_; }) && pred(responses_);
}

std::vector<api::SessionResponse> SessionClient::responses() {
  std::lock_guard lock(mu_);
  return responses_;
}

std::vector<std::int64_t> iota(std::int64_t from, std::int64_t to) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = from; i <= to; ++i) v.push_back(i);
  return v;
}

std::vector<std::int64_t> SessionClient::delivered_versions() { return versions_in(responses()); }

std::vector<std::int64_t> versions_in(const std::vector<api::SessionResponse>& responses) {
  std::vector<std::int64_t> out;
  for (const auto& r : responses) {
    if (r.has_broadcast()) out.push_back(r.broadcast().server_version());
    if (r.has_sync_state()) {
      for (const auto& p : r.sync_state().patches()) out.push_back(p.server_version());
    }
  }
  return out;
}

grpc::Status SessionClient::finish(std::chrono::milliseconds timeout) {
  {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return ended_; })) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "test: the stream did not end");
    }
  }
  reader_.join();
  return stream_->Finish();
}

bool SessionClient::ended() {
  std::lock_guard lock(mu_);
  return ended_;
}

void store_patch_directly(const TestDatabase& db, const std::string& channel, const api::Patch& patch,
                          std::int64_t version) {
  pqxx::connection c(db.url());
  pqxx::work tx(c);
  const std::string body = patch.SerializeAsString();
  tx.exec_params("INSERT INTO patches (channel_id, version, patch_id, client_id, op, body) "
                 "SELECT id, $2, $3, $4, $5, $6 FROM channels WHERE name = $1",
                 channel, version, patch.id(), patch.client_id(), patch.op(),
                 pqxx::binarystring(body.data(), body.size()));
  tx.exec_params("UPDATE channels SET head = $2 WHERE name = $1", channel, version);
  tx.commit();
}

std::string verify_log_and_state(const TestDatabase& db, const std::string& channel) {
  pqxx::connection c(db.url());
  // One snapshot: every commit writes the log and the state together, so
  // they must agree in any snapshot, even while syncd is still committing.
  pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(c);
  const pqxx::result ch = tx.exec("SELECT id, head FROM channels WHERE name = " + tx.quote(channel));
  if (ch.empty()) return "no channel " + channel;
  const std::string id = ch[0][0].c_str();
  const std::int64_t head = ch[0][1].as<std::int64_t>();

  graph::Graph fold;
  std::int64_t expect = 1;
  for (const pqxx::row& r : tx.exec("SELECT version, body FROM patches WHERE channel_id = " + id +
                                    " ORDER BY version")) {
    const std::int64_t v = r[0].as<std::int64_t>();
    if (v != expect) return "version " + std::to_string(expect) + " missing (next is " + std::to_string(v) + ")";
    ++expect;
    const pqxx::binarystring body(r[1]);
    api::Patch p;
    if (!p.ParseFromArray(body.data(), static_cast<int>(body.size()))) return "undecodable patch at " + std::to_string(v);
    if (auto rej = fold.apply(p, v, graph::ConflictPolicy::kLastWriterWins)) {
      return "stored patch " + std::to_string(v) + " does not apply to the fold: " + rej->reason;
    }
  }
  if (expect - 1 != head) return "head is " + std::to_string(head) + " but the log ends at " + std::to_string(expect - 1);

  auto compare = [&](const char* table, const char* key, const auto& elements, bool edges) -> std::string {
    const pqxx::result rows = tx.exec(std::string("SELECT ") + key + ", label, properties::text, version, client_id" +
                                      (edges ? ", from_node_id, to_node_id" : "") + " FROM " + table +
                                      " WHERE channel_id = " + id);
    if (rows.size() != elements.size()) {
      return std::string(table) + ": " + std::to_string(rows.size()) + " rows, fold has " +
             std::to_string(elements.size());
    }
    for (const pqxx::row& r : rows) {
      auto it = elements.find(r[0].c_str());
      if (it == elements.end()) return std::string(table) + ": row " + r[0].c_str() + " not in the fold";
      const graph::Element& e = it->second;
      const auto props = graph::struct_from_json(r[2].c_str());
      if (e.label != r[1].c_str() || !props ||
          !google::protobuf::util::MessageDifferencer::Equals(*props, e.properties) ||
          e.stamp.version != r[3].as<std::int64_t>() || e.stamp.client_id != r[4].c_str() ||
          (edges && (e.from != r[5].c_str() || e.to != r[6].c_str()))) {
        return std::string(table) + ": row " + r[0].c_str() + " differs from the fold";
      }
    }
    return "";
  };
  if (auto d = compare("nodes", "node_id", fold.nodes(), false); !d.empty()) return d;
  return compare("edges", "edge_id", fold.edges(), true);
}

}  // namespace syncd::testing
