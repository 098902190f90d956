// A small strict JSON reader for the .acmodel header (RFC 8259 values, no
// extensions). Parse errors carry the byte offset; nesting is capped so a
// hostile header cannot exhaust the stack.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace autoconfig {
namespace json {

struct Value {
  enum Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Null;
  bool b = false;
  double num = 0.0;
  std::string str;
  std::vector<Value> arr;
  std::vector<std::pair<std::string, Value>> obj;   // in file order; duplicate keys are refused

  const Value* find(const std::string& key) const;  // nullptr when absent (or not an object)
  static const char* kind_name(Kind k);
};

// Parses text[0, n) as one JSON value. On failure returns false and sets *error
// ("... at byte N").
bool parse(const char* text, size_t n, Value* out, std::string* error);

}  // namespace json
}  // namespace autoconfig
