#include "store/pq.h"

#include <poll.h>

#include <cerrno>
#include <charconv>
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

Conn connect(const std::string& url) {
  Conn conn(PQconnectdb(url.c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) fail(conn.get());
  return conn;
}

void prepare(PGconn* conn, const char* name, const char* sql) {
  Result r(PQprepare(conn, name, sql, 0, nullptr));
  if (!succeeded(r.get())) fail(conn, r.get());
}

Result exec(PGconn* conn, const char* sql) {
  Result r(PQexec(conn, sql));
  if (!succeeded(r.get())) fail(conn, r.get());
  return r;
}

Result exec_prepared(PGconn* conn, const char* name, std::initializer_list<const std::string*> params) {
  std::vector<const char*> values;
  for (const std::string* p : params) values.push_back(p->c_str());
  Result r(PQexecPrepared(conn, name, static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0));
  if (!succeeded(r.get())) fail(conn, r.get());
  return r;
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
  if (PQenterPipelineMode(conn_) != 1 || PQsetnonblocking(conn_, 1) != 0) fail(conn_);
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

void Pipeline::sync() {
  if (PQpipelineSync(conn_) != 1) fail(conn_);
  for (;;) {
    const int left = PQflush(conn_);
    if (left == 0) break;
    if (left < 0) fail(conn_);
    pollfd fd{PQsocket(conn_), POLLIN | POLLOUT, 0};
    if (poll(&fd, 1, -1) < 0 && errno != EINTR) fail(conn_);
    if ((fd.revents & POLLIN) != 0 && PQconsumeInput(conn_) != 1) fail(conn_);
  }
}

Result Pipeline::next() {
  Result r(PQgetResult(conn_));
  if (r == nullptr) fail(conn_);
  if (!succeeded(r.get())) fail(conn_, r.get());
  Result end(PQgetResult(conn_));  // each statement's results end with a null
  if (end != nullptr) fail(conn_, end.get());
  return r;
}

void Pipeline::finish() {
  Result r(PQgetResult(conn_));
  if (r == nullptr || PQresultStatus(r.get()) != PGRES_PIPELINE_SYNC) fail(conn_, r.get());
  if (PQsetnonblocking(conn_, 0) != 0 || PQexitPipelineMode(conn_) != 1) fail(conn_);
}

std::int64_t int64(const PGresult* r, int row, int col) {
  const std::string_view t = text(r, row, col);
  std::int64_t v = 0;
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

}  // namespace syncd::store::pq
