#pragma once
// Thin helpers over libpq, on which the change log runs: libpqxx 6 can
// neither read results in binary format (log pages) nor send statements in
// pipeline mode (the committer's batches).

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace syncd::store::pq {

// A failed statement or a lost connection. `sqlstate` is empty when the
// connection itself failed.
class Error : public std::runtime_error {
 public:
  Error(const std::string& what, std::string sqlstate, bool timed_out = false)
      : std::runtime_error(what), sqlstate_(std::move(sqlstate)), timed_out_(timed_out) {}
  const std::string& sqlstate() const { return sqlstate_; }
  bool connection_lost() const { return sqlstate_.empty() || sqlstate_.rfind("08", 0) == 0; }
  // The database did not answer within the response timeout (the
  // connection counts as lost too).
  bool timed_out() const { return timed_out_; }

 private:
  std::string sqlstate_;
  bool timed_out_;
};

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;

// The longest syncd waits for PostgreSQL to take or answer a statement
// (default 10 s). A database that stays silent longer (hung, or cut off
// with no RST) is treated as a lost connection: the caller drops it, and a
// transaction in flight is rolled back or, if COMMIT was already sent, in
// doubt. Set once at startup, before any connection is used.
void set_response_timeout(std::chrono::milliseconds timeout);

// Connects; throws Error when it cannot.
Conn connect(const std::string& url);

// Prepares `sql` as `name` on `conn`; throws Error.
void prepare(PGconn* conn, const char* name, const char* sql);

// Runs one statement (or several, separated by `;`) outside pipeline mode;
// the last result. Throws Error unless every statement succeeds.
Result exec(PGconn* conn, const char* sql);
// A prepared statement; results in text format, or binary when `binary`.
// A null parameter is SQL NULL.
Result exec_prepared(PGconn* conn, const char* name, std::initializer_list<const std::string*> params,
                     bool binary = false);

// A one-dimensional PostgreSQL array in text form, built element by
// element: the way a batch passes a variable number of rows as one
// parameter of a prepared statement.
class TextArray {
 public:
  void add(std::string_view text);
  void add(std::int64_t value);
  void add_bytea(std::string_view bytes);  // hex form
  bool empty() const { return count_ == 0; }
  // The literal, e.g. {"a","b"}; closes the array, so nothing may be added after.
  const std::string& str();

 private:
  std::string body_ = "{";
  bool closed_ = false;
  std::size_t count_ = 0;
};

// One round trip in pipeline mode: statements queued with send() go out
// together at sync(), their results come back in order from next(), and
// finish() takes the closing Sync and leaves pipeline mode. Statements
// before the Sync share one transaction (an implicit one, unless BEGIN was
// sent). Every call throws Error on failure; after an error the caller
// must drop the connection, which may hold an aborted transaction.
class Pipeline {
 public:
  explicit Pipeline(PGconn* conn);
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  void send(const char* sql);  // a statement without parameters
  void send_prepared(const char* name, std::initializer_list<const std::string*> params);
  // Asks the server to send the answers to everything queued so far
  // without waiting for the Sync (it holds them back until then).
  void flush_request();
  // Sends everything queued. While sending, it also reads what the server
  // already answered, so neither side can block the other on a full socket.
  void sync();
  Result next();
  void finish();

 private:
  PGconn* conn_;
};

// Text-format field access.
inline std::string_view text(const PGresult* r, int row, int col) {
  return {PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col))};
}
std::int64_t int64(const PGresult* r, int row, int col);

}  // namespace syncd::store::pq
