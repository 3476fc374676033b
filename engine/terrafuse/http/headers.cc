#include "terrafuse/http/headers.h"

#include <algorithm>

namespace terrafuse::http {

bool HeaderNameEquals(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) { return lower(x) == lower(y); });
}

std::optional<std::string_view> Headers::Find(std::string_view name) const {
  for (const auto& [key, value] : fields_) {
    if (HeaderNameEquals(key, name)) return std::string_view(value);
  }
  return std::nullopt;
}

void Headers::Set(std::string name, std::string value) {
  // One scan: most names are new (Remove then Add scanned twice and moved every field).
  auto it = std::find_if(fields_.begin(), fields_.end(), [&](const Field& f) { return HeaderNameEquals(f.first, name); });
  if (it == fields_.end()) {
    Add(std::move(name), std::move(value));
    return;
  }
  fields_.erase(std::remove_if(it + 1, fields_.end(), [&](const Field& f) { return HeaderNameEquals(f.first, name); }),
                fields_.end());
  it->first = std::move(name);  // the caller's spelling, as before
  it->second = std::move(value);
}

void Headers::Add(std::string name, std::string value) {
  if (fields_.empty()) fields_.reserve(8);  // a response has about that many: one allocation
  fields_.emplace_back(std::move(name), std::move(value));
}

void Headers::Remove(std::string_view name) {
  std::erase_if(fields_, [&](const Field& field) { return HeaderNameEquals(field.first, name); });
}

}  // namespace terrafuse::http
