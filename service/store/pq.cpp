#include "store/pq.h"

#include "observe/metrics.h"

#include <poll.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

namespace syncd::store::pq {
namespace {

[[noreturn]] void fail(PGconn* conn, const PGresult* r = nullptr) {
  const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string what = r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(conn);
  if (what.empty()) what = PQerrorMessage(conn);
  while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
  throw Error(what, state != nullptr ? state : "");
}

std::atomic<std::int64_t> response_timeout_ms{10'000};

using Clock = std::chrono::steady_clock;

Clock::time_point deadline() { return Clock::now() + std::chrono::milliseconds(response_timeout_ms.load()); }

// Waits until the socket is ready for `events` or the deadline passes;
// returns the events seen. Throws a lost-connection Error on timeout.
short wait_socket(PGconn* conn, short events, Clock::time_point until) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) {
      throw Error("PostgreSQL did not answer within " + std::to_string(response_timeout_ms.load()) +
                      " ms; the connection is dropped",
                  "", /*timed_out=*/true);
    }
    pollfd fd{PQsocket(conn), events, 0};
    const int n = poll(&fd, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (n > 0) return fd.revents;
    if (n < 0 && errno != EINTR) throw Error(std::string("poll failed: ") + std::strerror(errno), "");
  }
}

// Sends what libpq has buffered, reading answers meanwhile so neither side
// blocks the other on a full socket (the connection is non-blocking).
void flush(PGconn* conn, Clock::time_point until) {
  for (;;) {
    const int left = PQflush(conn);
    if (left == 0) return;
    if (left < 0) fail(conn);
    const short seen = wait_socket(conn, POLLIN | POLLOUT, until);
    if ((seen & POLLIN) != 0 && PQconsumeInput(conn) != 1) fail(conn);
  }
}

// Returns once PQgetResult will not block.
void await_result(PGconn* conn, Clock::time_point until) {
  while (PQisBusy(conn) == 1) {
    wait_socket(conn, POLLIN, until);
    if (PQconsumeInput(conn) != 1) fail(conn);
  }
}

bool succeeded(const PGresult* r) {
  const ExecStatusType s = PQresultStatus(r);
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

// Quotes one array element: "…" with backslashes and quotes escaped.
void append_quoted(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

}  // namespace

void set_response_timeout(std::chrono::milliseconds timeout) { response_timeout_ms = timeout.count(); }

Conn connect(const std::string& url) {
  // Bounded by the URL's connect_timeout (see store/conninfo.h).
  Conn conn(PQconnectdb(url.c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    observe::Metrics::get().database_errors.Increment();
    fail(conn.get());
  }
  // Every wait is then a poll with a deadline, never a blocking read.
  if (PQsetnonblocking(conn.get(), 1) != 0) fail(conn.get());
  return conn;
}

// Every statement outside a pipeline: sent, then every result waited for
// under the response timeout. A failure in any result is the statement's.
namespace {
Result finish_statement(PGconn* conn, int sent) {
  if (sent != 1) fail(conn);
  const auto until = deadline();
  flush(conn, until);
  Result failed;
  Result last;
  for (;;) {
    await_result(conn, until);
    Result r(PQgetResult(conn));
    if (r == nullptr) break;
    if (!succeeded(r.get()) && failed == nullptr) {
      failed = std::move(r);
    } else {
      last = std::move(r);
    }
  }
  if (failed != nullptr) fail(conn, failed.get());
  if (last == nullptr) fail(conn);
  return last;
}
}  // namespace

void prepare(PGconn* conn, const char* name, const char* sql) {
  finish_statement(conn, PQsendPrepare(conn, name, sql, 0, nullptr));
}

Result exec(PGconn* conn, const char* sql) { return finish_statement(conn, PQsendQuery(conn, sql)); }

Result exec_prepared(PGconn* conn, const char* name, std::initializer_list<const std::string*> params,
                     bool binary) {
  std::vector<const char*> values;
  for (const std::string* p : params) values.push_back(p ? p->c_str() : nullptr);
  return finish_statement(conn, PQsendQueryPrepared(conn, name, static_cast<int>(values.size()), values.data(),
                                                    nullptr, nullptr, binary ? 1 : 0));
}

void TextArray::add(std::string_view text) {
  if (count_++ > 0) body_ += ',';
  append_quoted(body_, text);
}

void TextArray::add(std::int64_t value) {
  if (count_++ > 0) body_ += ',';
  body_ += std::to_string(value);
}

void TextArray::add_bytea(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  if (count_++ > 0) body_ += ',';
  body_ += "\"\\\\x";  // "\\x, an escaped backslash inside the quoted element
  for (unsigned char c : bytes) {
    body_ += kHex[c >> 4];
    body_ += kHex[c & 15];
  }
  body_ += '"';
}

const std::string& TextArray::str() {
  if (!closed_) {
    body_ += '}';  // in place: a batch's arrays can be large
    closed_ = true;
  }
  return body_;
}

Pipeline::Pipeline(PGconn* conn) : conn_(conn) {
  if (PQenterPipelineMode(conn_) != 1) fail(conn_);
}

void Pipeline::send(const char* sql) {
  if (PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) != 1) fail(conn_);
}

void Pipeline::send_prepared(const char* name, std::initializer_list<const std::string*> params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const std::string* p : params) values.push_back(p->c_str());
  if (PQsendQueryPrepared(conn_, name, static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0) != 1) {
    fail(conn_);
  }
}

void Pipeline::flush_request() {
  if (PQsendFlushRequest(conn_) != 1) fail(conn_);
}

void Pipeline::sync() {
  if (PQpipelineSync(conn_) != 1) fail(conn_);
  flush(conn_, deadline());
}

Result Pipeline::next() {
  await_result(conn_, deadline());
  Result r(PQgetResult(conn_));
  if (r == nullptr) fail(conn_);
  if (!succeeded(r.get())) fail(conn_, r.get());
  Result end(PQgetResult(conn_));  // each statement's results end with a null
  if (end != nullptr) fail(conn_, end.get());
  return r;
}

void Pipeline::finish() {
  await_result(conn_, deadline());
  Result r(PQgetResult(conn_));
  if (r == nullptr || PQresultStatus(r.get()) != PGRES_PIPELINE_SYNC) fail(conn_, r.get());
  if (PQexitPipelineMode(conn_) != 1) fail(conn_);
}

std::int64_t int64(const PGresult* r, int row, int col) {
  const std::string_view t = text(r, row, col);
  std::int64_t v = 0;
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

}  // namespace syncd::store::pq
