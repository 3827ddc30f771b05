// SQLite's errors as dispatch::Errors, and statements that prepare or throw.
#include "sqlite/statement.h"

namespace dispatch::scheduler::sqlite {

Error db_error(sqlite3* db, std::string_view what) {
  return Error(Code::internal, std::string(what) + ": " + sqlite3_errmsg(db));
}

void exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    throw Error(Code::internal, std::string("sqlite: ") + msg);
  }
}

Stmt::Stmt(sqlite3* db, const std::string& sql) : db_(db) {
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
    throw db_error(db, "preparing '" + sql.substr(0, 60) + "'");
  }
}

}  // namespace dispatch::scheduler::sqlite
