// HTTP header fields: kept in arrival order, looked up case-insensitively.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace terrafuse::http {

/// Returns whether two header names are equal ignoring ASCII case.
bool HeaderNameEquals(std::string_view a, std::string_view b);

class Headers {
 public:
  using Field = std::pair<std::string, std::string>;

  /// Returns the first value of `name`, or nullopt when absent.
  std::optional<std::string_view> Find(std::string_view name) const;
  bool Has(std::string_view name) const { return Find(name).has_value(); }

  /// Replaces every value of `name` with `value`.
  void Set(std::string name, std::string value);
  /// Appends a value, keeping earlier ones (repeated fields such as Vary).
  void Add(std::string name, std::string value);
  void Remove(std::string_view name);

  const std::vector<Field>& fields() const { return fields_; }

 private:
  std::vector<Field> fields_;
};

}  // namespace terrafuse::http
