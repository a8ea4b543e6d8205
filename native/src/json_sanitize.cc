#include "json_sanitize.h"

#include <cstring>

namespace tdaddon {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The code unit of a "\uXXXX" escape starting at p (p[0] == '\\'), or -1 if it is not one.
int EscapedUnit(const char *p, const char *end) {
  if (end - p < 6 || p[1] != 'u') return -1;
  int value = 0;
  for (int i = 2; i < 6; ++i) {
    int digit = HexDigit(p[i]);
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

}  // namespace

size_t ReplaceLoneSurrogateEscapes(char *json, size_t length) {
  size_t fixed = 0;
  char *p = json;
  char *end = json + length;
  // Backslashes only occur inside JSON strings, so no string/non-string state is needed.
  while ((p = static_cast<char *>(memchr(p, '\\', static_cast<size_t>(end - p)))) != nullptr) {
    int unit = EscapedUnit(p, end);
    if (unit < 0xD800 || unit > 0xDFFF) {
      p += 2;  // any other escape, including "\\" which must not be read as the start of a new one
      if (p >= end) break;
      continue;
    }
    if (unit <= 0xDBFF) {
      int low = EscapedUnit(p + 6, end);
      if (p + 6 < end && p[6] == '\\' && low >= 0xDC00 && low <= 0xDFFF) {
        p += 12;
        if (p >= end) break;
        continue;
      }
    }
    memcpy(p + 2, "fffd", 4);
    ++fixed;
    p += 6;
    if (p >= end) break;
  }
  return fixed;
}

}  // namespace tdaddon
