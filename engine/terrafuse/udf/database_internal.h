// A thin SQLite wrapper: one connection, cached prepared statements, bound parameters only,
// every failure an arrow::Status naming the statement's purpose. Not thread-safe: its owner
// (the Registry) serializes all use behind one mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "terrafuse/common/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace terrafuse::udf::internal {

/// A cached prepared statement in use; resets and clears its bindings when destroyed.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt, std::string_view purpose)
      : db_(db), stmt_(stmt), purpose_(purpose) {}
  ~Statement();
  Statement(Statement&& other) noexcept
      : db_(other.db_),
        stmt_(other.stmt_),
        purpose_(other.purpose_),
        bind_status_(std::move(other.bind_status_)) {
    other.stmt_ = nullptr;
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;

  /// Binds parameter `index` (1-based). Text is copied; a bind failure is reported by Step.
  Statement& Bind(int index, std::string_view text);
  Statement& BindBlob(int index, std::string_view bytes);
  Statement& Bind(int index, int64_t value);
  Statement& BindNull(int index);

  /// Advances to the next row: true when a row is available, false when done.
  Result<bool> Step();
  /// Steps until done, for statements without result rows.
  Status Run();

  std::string Text(int column) const;  // "" for NULL
  std::string Blob(int column) const;  // "" for NULL
  int64_t Int(int column) const;
  bool IsNull(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  std::string_view purpose_;
  Status bind_status_;
};

class Database {
 public:
  /// Opens (creating when missing) the database at `path` with a busy timeout, WAL journal
  /// and foreign keys on.
  static Result<std::unique_ptr<Database>> Open(const std::string& path, int busy_timeout_ms);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  /// Runs SQL without parameters (schema, pragmas, transaction control).
  Status Exec(const std::string& sql, std::string_view purpose);
  /// Returns the prepared statement of `sql` (compiled once, then cached by its text).
  /// `purpose` names it in errors ("look up a shared token") and must outlive the statement.
  Result<Statement> Prepare(const char* sql, std::string_view purpose);
  /// Rows changed by the last INSERT, UPDATE or DELETE.
  int64_t Changes() const;
  /// Rows written through this connection so far (no query: free to call).
  int64_t TotalChanges() const;
  /// `PRAGMA data_version`: moves when another connection commits.
  Result<int64_t> DataVersion();
  /// `PRAGMA user_version`.
  Result<int64_t> UserVersion();

  const std::string& path() const { return path_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;  // keyed by SQL text
};

/// A write transaction (BEGIN IMMEDIATE: takes the write lock up front, so two processes never
/// deadlock upgrading read locks). Rolled back when destroyed without Commit().
class Transaction {
 public:
  static Result<std::unique_ptr<Transaction>> Begin(Database* db);
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
  bool done_ = false;
};

/// Returns the error of SQLite result code `rc` as a Status: SQLITE_BUSY/LOCKED → Unavailable,
/// SQLITE_CONSTRAINT → AlreadyExists, I/O and disk errors → IOError, others → Internal.
Status SqliteError(sqlite3* db, int rc, std::string_view purpose);

}  // namespace terrafuse::udf::internal
