// TDLib's log messages (td_set_log_message_callback) forwarded to a JS callback. The callback is
// process-global and runs on TDLib's own threads, so messages are queued to JS; a fatal message (level 0)
// is also written to stderr synchronously, because TDLib aborts the process right after the callback.
#pragma once

#include <napi.h>

#include "tdjson_lib.h"

namespace tdaddon {

// Installs `callback(level, message)` for messages up to `max_verbosity`; replaces any previous one.
void SetLogCallback(Napi::Env env, const TdJsonApi *api, int max_verbosity, Napi::Function callback);
// Uninstalls the callback (TDLib then only writes to its own log stream).
void ClearLogCallback(const TdJsonApi *api);
// Messages dropped because JS did not keep up (the queue is bounded).
uint64_t DroppedLogMessages();

}  // namespace tdaddon
