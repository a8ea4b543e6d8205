#include "log_bridge.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

#include "env_hooks.h"

namespace tdaddon {
namespace {

struct LogMessage {
  int level;
  std::string text;
};

void CallJs(Napi::Env env, Napi::Function callback, std::nullptr_t *, LogMessage *message) {
  std::unique_ptr<LogMessage> owned(message);
  if (env == nullptr || callback == nullptr) return;
  callback.Call({Napi::Number::New(env, owned->level), Napi::String::New(env, owned->text)});
}

using LogTsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, LogMessage, CallJs>;

constexpr size_t kMaxQueuedMessages = 4096;

std::mutex g_mutex;
LogTsfn g_tsfn;
bool g_installed = false;
std::atomic<uint64_t> g_dropped{0};

void AppendJsonEscaped(std::string &out, const char *text) {
  static const char kHex[] = "0123456789abcdef";
  for (const unsigned char *p = reinterpret_cast<const unsigned char *>(text); *p != 0; ++p) {
    unsigned char c = *p;
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      out += "\\u00";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
}

// A pino-shaped JSON line (level 60 = fatal), so log collectors treat it like the rest of our logs.
// Written with write(2): no buffering that abort() could lose.
void WriteFatal(const char *message) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  std::string line = "{\"level\":60,\"time\":";
  line += std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
  line += ",\"pid\":" + std::to_string(getpid()) + ",\"name\":\"tdlib\",\"msg\":\"TDLib fatal error: ";
  AppendJsonEscaped(line, message);
  line += "\"}\n";
  size_t written = 0;
  while (written < line.size()) {
    ssize_t n = write(STDERR_FILENO, line.data() + written, line.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
}

void OnTdLog(int level, const char *message) {
  if (level == 0) WriteFatal(message);
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_installed) return;
  auto *queued = new LogMessage{level, message};
  if (g_tsfn.NonBlockingCall(queued) != napi_ok) {
    delete queued;
    g_dropped.fetch_add(1, std::memory_order_relaxed);
  }
}

void ReleaseLocked() {
  if (g_installed) {
    g_installed = false;
    g_tsfn.Release();
  }
}

void CleanupAtExit(void *) {
  const TdJsonApi *api = Api();
  if (api != nullptr) ClearLogCallback(api);
}

}  // namespace

void SetLogCallback(Napi::Env env, const TdJsonApi *api, int max_verbosity, Napi::Function callback) {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    ReleaseLocked();
    g_tsfn = LogTsfn::New(env, callback, "tdjson-log", kMaxQueuedMessages, 1);
    // Log delivery must never keep the process alive on its own.
    g_tsfn.Unref(env);
    g_installed = true;
    // TDLib's threads may still log while the environment is torn down: detach the callback first.
    AddCleanupHookOnce(env, CleanupAtExit);
  }
  // Outside g_mutex: TDLib may hold its own log lock while calling OnTdLog, which takes g_mutex.
  api->set_log_message_callback(max_verbosity, OnTdLog);
}

void ClearLogCallback(const TdJsonApi *api) {
  api->set_log_message_callback(0, nullptr);
  std::lock_guard<std::mutex> lock(g_mutex);
  ReleaseLocked();
}

uint64_t DroppedLogMessages() { return g_dropped.load(std::memory_order_relaxed); }

}  // namespace tdaddon
