#include "tdjson_lib.h"

#include <dlfcn.h>

#include <atomic>
#include <mutex>

namespace tdaddon {
namespace {

std::mutex g_mutex;
TdJsonApi g_api;
// Atomic so the hot path (every td_send) reads it without taking the load mutex.
std::atomic<const TdJsonApi *> g_loaded{nullptr};
std::string g_path;

template <class F>
bool Resolve(void *handle, const char *name, F &out, std::string &missing) {
  out = reinterpret_cast<F>(dlsym(handle, name));
  if (out == nullptr) {
    if (!missing.empty()) missing += ", ";
    missing += name;
    return false;
  }
  return true;
}

}  // namespace

std::string LoadTdJson(const std::string &path) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_loaded != nullptr) {
    if (path == g_path) return "";
    return "libtdjson is already loaded from " + g_path + " in this process; refusing to also load " + path;
  }
  // RTLD_DEEPBIND: TDLib links its own OpenSSL and zlib; without it, their symbols would bind to the
  // copies Node exports and TDLib would crash or misbehave on version mismatches.
  // RTLD_NOW: a library missing a symbol fails here, with a message, not later inside a request.
  void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (handle == nullptr) {
    const char *reason = dlerror();
    return "cannot load libtdjson from " + path + ": " + (reason != nullptr ? reason : "unknown dlopen error");
  }
  TdJsonApi api;
  std::string missing;
  Resolve(handle, "td_create_client_id", api.create_client_id, missing);
  Resolve(handle, "td_send", api.send, missing);
  Resolve(handle, "td_receive", api.receive, missing);
  Resolve(handle, "td_execute", api.execute, missing);
  Resolve(handle, "td_set_log_message_callback", api.set_log_message_callback, missing);
  if (!missing.empty()) {
    dlclose(handle);
    return "library " + path + " is not a usable libtdjson (TDLib 1.7+ multi-client interface): missing " +
           missing;
  }
  // The handle is never closed: TDLib's threads and static state live until the process exits.
  g_api = api;
  g_path = path;
  g_loaded.store(&g_api, std::memory_order_release);
  return "";
}

const TdJsonApi *Api() { return g_loaded.load(std::memory_order_acquire); }

const std::string &LoadedPath() { return g_path; }

}  // namespace tdaddon
