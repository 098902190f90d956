#include "model/json.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace autoconfig {
namespace json {

const Value* Value::find(const std::string& key) const {
  if (kind != Object) return nullptr;
  for (const auto& kv : obj)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const char* Value::kind_name(Kind k) {
  switch (k) {
    case Null: return "null";
    case Bool: return "a boolean";
    case Number: return "a number";
    case String: return "a string";
    case Array: return "an array";
    case Object: return "an object";
  }
  return "?";
}

namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  Parser(const char* s, size_t n) : s_(s), n_(n) {}

  bool run(Value* out, std::string* error) {
    skip_ws();
    if (!value(out, 0)) {
      *error = err_ + " at byte " + std::to_string(pos_);
      return false;
    }
    skip_ws();
    if (pos_ != n_) {
      *error = "unexpected text after the JSON value at byte " + std::to_string(pos_);
      return false;
    }
    return true;
  }

 private:
  bool fail(const char* what) {
    if (err_.empty()) err_ = what;
    return false;
  }
  void skip_ws() {
    while (pos_ < n_ && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool literal(const char* word) {
    const size_t len = std::strlen(word);
    if (n_ - pos_ < len || std::memcmp(s_ + pos_, word, len) != 0) return fail("invalid literal");
    pos_ += len;
    return true;
  }

  bool value(Value* v, int depth) {
    if (depth > kMaxDepth) return fail("JSON nested too deeply");
    if (pos_ >= n_) return fail("unexpected end of JSON");
    const char c = s_[pos_];
    switch (c) {
      case '{': return object(v, depth);
      case '[': return array(v, depth);
      case '"': v->kind = Value::String; return string(&v->str);
      case 't': v->kind = Value::Bool; v->b = true; return literal("true");
      case 'f': v->kind = Value::Bool; v->b = false; return literal("false");
      case 'n': v->kind = Value::Null; return literal("null");
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return number(v);
        return fail("unexpected character");
    }
  }

  bool object(Value* v, int depth) {
    v->kind = Value::Object;
    ++pos_;
    skip_ws();
    if (pos_ < n_ && s_[pos_] == '}') { ++pos_; return true; }
    for (;;) {
      skip_ws();
      if (pos_ >= n_) return fail("unexpected end of JSON in an object");
      if (s_[pos_] != '"') return fail("expected a string key");
      std::string key;
      if (!string(&key)) return false;
      for (const auto& kv : v->obj)
        if (kv.first == key) return fail("duplicate key");
      skip_ws();
      if (pos_ >= n_ || s_[pos_] != ':') return fail("expected ':'");
      ++pos_;
      skip_ws();
      v->obj.emplace_back(std::move(key), Value());
      if (!value(&v->obj.back().second, depth + 1)) return false;
      skip_ws();
      if (pos_ >= n_) return fail("unexpected end of JSON in an object");
      if (s_[pos_] == ',') { ++pos_; continue; }
      if (s_[pos_] == '}') { ++pos_; return true; }
      return fail("expected ',' or '}'");
    }
  }

  bool array(Value* v, int depth) {
    v->kind = Value::Array;
    ++pos_;
    skip_ws();
    if (pos_ < n_ && s_[pos_] == ']') { ++pos_; return true; }
    for (;;) {
      skip_ws();
      v->arr.emplace_back();
      if (!value(&v->arr.back(), depth + 1)) return false;
      skip_ws();
      if (pos_ >= n_) return fail("unexpected end of JSON in an array");
      if (s_[pos_] == ',') { ++pos_; continue; }
      if (s_[pos_] == ']') { ++pos_; return true; }
      return fail("expected ',' or ']'");
    }
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool hex4(unsigned* u) {
    if (n_ - pos_ < 4) return fail("truncated \\u escape");
    *u = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = hex(s_[pos_ + i]);
      if (h < 0) return fail("bad \\u escape");
      *u = *u * 16 + static_cast<unsigned>(h);
    }
    pos_ += 4;
    return true;
  }
  static void utf8(unsigned cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool string(std::string* out) {
    ++pos_;   // opening quote
    for (;;) {
      if (pos_ >= n_) return fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[pos_++]);
      if (c == '"') return true;
      if (c < 0x20) return fail("control character in a string");
      if (c != '\\') { out->push_back(static_cast<char>(c)); continue; }
      if (pos_ >= n_) return fail("unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          unsigned cp;
          if (!hex4(&cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00) {   // a surrogate pair
            unsigned lo;
            if (n_ - pos_ < 2 || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') return fail("lone surrogate");
            pos_ += 2;
            if (!hex4(&lo)) return false;
            if (lo < 0xDC00 || lo >= 0xE000) return fail("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            return fail("lone surrogate");
          }
          utf8(cp, out);
          break;
        }
        default: return fail("bad escape in a string");
      }
    }
  }

  bool number(Value* v) {
    const size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    if (pos_ >= n_) return fail("bad number");
    if (s_[pos_] == '0') {
      ++pos_;
    } else if (s_[pos_] >= '1' && s_[pos_] <= '9') {
      while (pos_ < n_ && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    } else {
      return fail("bad number");
    }
    if (pos_ < n_ && s_[pos_] == '.') {
      ++pos_;
      if (pos_ >= n_ || s_[pos_] < '0' || s_[pos_] > '9') return fail("bad number");
      while (pos_ < n_ && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    if (pos_ < n_ && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < n_ && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (pos_ >= n_ || s_[pos_] < '0' || s_[pos_] > '9') return fail("bad number");
      while (pos_ < n_ && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    // strtod needs a terminated copy (the text is not NUL-terminated)
    const std::string text(s_ + start, pos_ - start);
    v->kind = Value::Number;
    v->num = std::strtod(text.c_str(), nullptr);   // the C locale's '.' (the library never calls setlocale)
    return true;
  }

  const char* s_;
  size_t n_;
  size_t pos_ = 0;
  std::string err_;
};

}  // namespace

bool parse(const char* text, size_t n, Value* out, std::string* error) {
  *out = Value();
  return Parser(text, n).run(out, error);
}

}  // namespace json
}  // namespace autoconfig
