// The store's thin layer over the SQLite C API: a connection that closes
// itself, prepared statements reused across writes (bind, step, reset), and
// SQLite's errors as dispatch::Errors.
//
// Not for: SQL of the store (schema.h, the store's own statements), or
// threads (the store decides which thread uses which connection).
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "dispatch/core/error.h"

namespace dispatch::scheduler::sqlite {

// internal: "<what>: <SQLite's message for db>".
Error db_error(sqlite3* db, std::string_view what);

// Runs SQL without results (pragmas, DDL); throws dispatch::Error.
void exec(sqlite3* db, const char* sql);

struct CloseConnection {
  void operator()(sqlite3* db) const noexcept { sqlite3_close(db); }
};
// Owns a connection. Its statements must be finalized first (a connection
// with live statements does not close).
using Connection = std::unique_ptr<sqlite3, CloseConnection>;

// A prepared statement, reset after each use.
class Stmt {
 public:
  Stmt() = default;
  // Throws dispatch::Error when the SQL does not prepare.
  Stmt(sqlite3* db, const std::string& sql);
  Stmt(Stmt&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept {
    std::swap(db_, o.db_);
    std::swap(stmt_, o.stmt_);
    return *this;
  }
  ~Stmt() { sqlite3_finalize(stmt_); }

  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // Text and blobs are bound without a copy (SQLITE_STATIC: one malloc and
  // copy less per value, on the writer's hot path): SQLite reads them in
  // step(), so they must stay alive until this use's last step().
  Stmt& bind(int i, std::string_view v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& bind_blob(int i, std::string_view v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& bind_null(int i) {
    sqlite3_bind_null(stmt_, i);
    return *this;
  }
  // True while a row is available; throws on error.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw db_error(db_, "step");
  }
  void done() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  // Runs a statement without rows (BEGIN, SAVEPOINT, ...); false on error.
  bool run() {
    const int rc = sqlite3_step(stmt_);
    sqlite3_reset(stmt_);
    return rc == SQLITE_DONE;
  }
  // For a caller that tells one failure from another (a constraint).
  sqlite3_stmt* raw() const noexcept { return stmt_; }
  int64_t i64(int c) const { return sqlite3_column_int64(stmt_, c); }
  bool is_null(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
  std::string text(int c) const {
    auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c))) : std::string();
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement at scope exit, also when a step throws.
struct Using {
  explicit Using(Stmt& s) : s(s) {}
  ~Using() { s.done(); }
  Stmt& s;
};

}  // namespace dispatch::scheduler::sqlite
