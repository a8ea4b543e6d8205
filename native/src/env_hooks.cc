#include "env_hooks.h"

#include <mutex>
#include <set>
#include <utility>

namespace tdaddon {
namespace {

std::mutex g_mutex;
std::set<std::pair<napi_env, void (*)(void *)>> g_registered;

struct Registration {
  napi_env env;
  void (*hook)(void *);
};

void RunAndForget(void *arg) {
  auto *registration = static_cast<Registration *>(arg);
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_registered.erase({registration->env, registration->hook});
  }
  registration->hook(nullptr);
  delete registration;
}

}  // namespace

void AddCleanupHookOnce(napi_env env, void (*hook)(void *)) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_registered.insert({env, hook}).second) return;
  napi_add_env_cleanup_hook(env, RunAndForget, new Registration{env, hook});
}

}  // namespace tdaddon
