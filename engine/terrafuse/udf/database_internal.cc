#include "terrafuse/udf/database_internal.h"

#include <sqlite3.h>

namespace terrafuse::udf::internal {

Status SqliteError(sqlite3* db, int rc, std::string_view purpose) {
  std::string message = "State database error while trying to " + std::string(purpose) + ": " +
                        (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return MakeError(ErrorKind::kUnavailable,
                       message + " (another process holds the database lock)");
    case SQLITE_CONSTRAINT: return AlreadyExists(message);
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return IOError(message);
    default: return Internal(message);
  }
}

Statement::~Statement() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

Statement& Statement::Bind(int index, std::string_view text) {
  int rc =
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = SqliteError(db_, rc, purpose_);
  return *this;
}

Statement& Statement::BindBlob(int index, std::string_view bytes) {
  int rc = sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = SqliteError(db_, rc, purpose_);
  return *this;
}

Statement& Statement::Bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = SqliteError(db_, rc, purpose_);
  return *this;
}

Statement& Statement::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = SqliteError(db_, rc, purpose_);
  return *this;
}

Result<bool> Statement::Step() {
  ARROW_RETURN_NOT_OK(bind_status_);
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc, purpose_);
}

Status Statement::Run() {
  while (true) {
    ARROW_ASSIGN_OR_RAISE(bool row, Step());
    if (!row) return Status::OK();
  }
}

std::string Statement::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  return text ? std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size))
              : std::string();
}

std::string Statement::Blob(int column) const {
  const void* data = sqlite3_column_blob(stmt_, column);
  int size = sqlite3_column_bytes(stmt_, column);
  return data ? std::string(static_cast<const char*>(data), static_cast<size_t>(size))
              : std::string();
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

bool Statement::IsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

Result<std::unique_ptr<Database>> Database::Open(const std::string& path, int busy_timeout_ms) {
  sqlite3* db = nullptr;
  // The owner serializes every use of the connection, so SQLite's own mutexes are not needed.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status st = IOError("Cannot open state database '", path,
                        "': ", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return st;
  }
  std::unique_ptr<Database> out(new Database(db, path));
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  ARROW_RETURN_NOT_OK(
      out->Exec("PRAGMA journal_mode = WAL", "switch the state database to WAL mode"));
  ARROW_RETURN_NOT_OK(
      out->Exec("PRAGMA synchronous = NORMAL", "set the state database's sync mode"));
  ARROW_RETURN_NOT_OK(out->Exec("PRAGMA foreign_keys = ON", "enable foreign keys"));
  return out;
}

Database::~Database() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Status Database::Exec(const std::string& sql, std::string_view purpose) {
  char* error = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
  sqlite3_free(error);  // the same text is available from sqlite3_errmsg
  if (rc != SQLITE_OK) return SqliteError(db_, rc, purpose);
  return Status::OK();
}

Result<Statement> Database::Prepare(const char* sql, std::string_view purpose) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, purpose);
    it = statements_.emplace(sql, stmt).first;
  }
  if (sqlite3_stmt_busy(it->second)) {
    return Internal("Statement to ", purpose, " is already in use (nested use of one statement)");
  }
  return Statement(db_, it->second, purpose);
}

int64_t Database::Changes() const { return sqlite3_changes64(db_); }

int64_t Database::TotalChanges() const { return sqlite3_total_changes64(db_); }

Result<int64_t> Database::DataVersion() {
  ARROW_ASSIGN_OR_RAISE(Statement st, Prepare("PRAGMA data_version", "read the data version"));
  ARROW_ASSIGN_OR_RAISE(bool row, st.Step());
  if (!row) return Internal("PRAGMA data_version returned no row");
  return st.Int(0);
}

Result<int64_t> Database::UserVersion() {
  ARROW_ASSIGN_OR_RAISE(Statement st, Prepare("PRAGMA user_version", "read the schema version"));
  ARROW_ASSIGN_OR_RAISE(bool row, st.Step());
  if (!row) return Internal("PRAGMA user_version returned no row");
  return st.Int(0);
}

Result<std::unique_ptr<Transaction>> Transaction::Begin(Database* db) {
  ARROW_RETURN_NOT_OK(db->Exec("BEGIN IMMEDIATE", "begin a transaction"));
  return std::unique_ptr<Transaction>(new Transaction(db));
}

Transaction::~Transaction() {
  if (!done_) (void)db_->Exec("ROLLBACK", "roll back a transaction");
}

Status Transaction::Commit() {
  ARROW_RETURN_NOT_OK(db_->Exec("COMMIT", "commit a transaction"));
  done_ = true;
  return Status::OK();
}

}  // namespace terrafuse::udf::internal
