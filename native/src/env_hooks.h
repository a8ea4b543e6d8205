#pragma once

#include <node_api.h>

namespace tdaddon {

// napi_add_env_cleanup_hook, at most once per (environment, hook): the module can be initialized more
// than once in one environment (a test runner re-requiring it), and Node aborts on a duplicate hook.
void AddCleanupHookOnce(napi_env env, void (*hook)(void *));

}  // namespace tdaddon
