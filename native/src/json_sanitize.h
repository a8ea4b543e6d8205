// TDLib's JSON parser accepts a "\uD800"-style escape of an unpaired UTF-16 surrogate and stores it as
// invalid UTF-8; when such a string is echoed back (testCallString, option values, proxy fields...) its
// JSON writer hits CHECK(Unreachable) and aborts the whole process. JSON.stringify emits exactly those
// escapes for lone surrogates in JS strings, so every request is scanned before it reaches TDLib.
#pragma once

#include <cstddef>

namespace tdaddon {

// Rewrites each escaped unpaired surrogate in `json` to "\uFFFD" (same length, in place), which is what
// Node already does for unescaped ones when it converts a JS string to UTF-8. Returns how many it fixed.
size_t ReplaceLoneSurrogateEscapes(char *json, size_t length);

}  // namespace tdaddon
