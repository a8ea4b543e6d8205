// Module glue: the JS-visible functions. Everything is process-global because libtdjson is.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "env_hooks.h"
#include "fence.h"
#include "json_sanitize.h"
#include "log_bridge.h"
#include "receiver.h"
#include "sender.h"
#include "tdjson_lib.h"

namespace tdaddon {
namespace {

const TdJsonApi *RequireApi(Napi::Env env) {
  const TdJsonApi *api = Api();
  if (api == nullptr) throw Napi::Error::New(env, "libtdjson is not loaded; call load(path) first");
  return api;
}

// Reused across calls: most requests are small, and an allocation per td_send shows up at 100k+/s.
thread_local std::vector<char> t_text(64 * 1024);

// Copies a JS string as NUL-terminated UTF-8 into t_text and returns it (length in *out_length).
const char *Utf8Arg(Napi::Env env, napi_value value, const char *what, size_t *out_length = nullptr) {
  size_t length = 0;
  napi_status status = napi_get_value_string_utf8(env, value, t_text.data(), t_text.size(), &length);
  if (status == napi_string_expected) throw Napi::TypeError::New(env, std::string(what) + " must be a string");
  if (status != napi_ok) throw Napi::Error::New(env, std::string("cannot read ") + what);
  // Close to the end the text may have been cut, possibly before a multi-byte character: measure and redo.
  if (length + 4 >= t_text.size()) {
    napi_get_value_string_utf8(env, value, nullptr, 0, &length);
    t_text.resize(length + 1);
    napi_get_value_string_utf8(env, value, t_text.data(), t_text.size(), &length);
  }
  ReplaceLoneSurrogateEscapes(t_text.data(), length);
  if (out_length != nullptr) *out_length = length;
  return t_text.data();
}

// Like Utf8Arg for a JSON object text, but with `"@extra":<extra>,` spliced in after its opening brace:
// JS then passes JSON.stringify's output unchanged instead of building (and V8 flattening) a new string.
const char *TaggedUtf8Arg(Napi::Env env, napi_value value, int64_t extra, size_t *out_length) {
  char prefix[40];
  int prefix_length = std::snprintf(prefix, sizeof prefix, "{\"@extra\":%lld,", static_cast<long long>(extra));
  // The text is copied so that its own '{' lands on the prefix's last byte (the ','), then overwritten.
  size_t offset = static_cast<size_t>(prefix_length) - 1;
  size_t length = 0;
  napi_status status =
      napi_get_value_string_utf8(env, value, t_text.data() + offset, t_text.size() - offset, &length);
  if (status == napi_string_expected) throw Napi::TypeError::New(env, "request must be a string");
  if (status != napi_ok) throw Napi::Error::New(env, "cannot read request");
  if (length + offset + 4 >= t_text.size()) {
    napi_get_value_string_utf8(env, value, nullptr, 0, &length);
    t_text.resize(length + offset + 1);
    napi_get_value_string_utf8(env, value, t_text.data() + offset, t_text.size() - offset, &length);
  }
  char *text = t_text.data();
  if (length < 2 || text[offset] != '{') throw Napi::TypeError::New(env, "request must be a JSON object");
  std::memcpy(text, prefix, static_cast<size_t>(prefix_length));
  // "{}" has no field to put a comma before.
  if (text[offset + 1] == '}') text[offset] = ' ';
  size_t total = offset + length;
  ReplaceLoneSurrogateEscapes(text, total);
  *out_length = total;
  return text;
}

Napi::Value Load(const Napi::CallbackInfo &info) {
  auto env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "load(path: string)");
  std::string error = LoadTdJson(info[0].As<Napi::String>().Utf8Value());
  if (!error.empty()) throw Napi::Error::New(env, error);
  return Napi::String::New(env, LoadedPath());
}

Napi::Value CreateClientId(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), RequireApi(info.Env())->create_client_id());
}

Napi::Value Send(const Napi::CallbackInfo &info) {
  auto env = info.Env();
  const TdJsonApi *api = RequireApi(env);
  if (info.Length() < 2) {
    throw Napi::TypeError::New(env, "send(clientId: number, request: string, direct?: boolean, extra?: number)");
  }
  int32_t client_id = 0;
  if (napi_get_value_int32(env, info[0], &client_id) != napi_ok) {
    throw Napi::TypeError::New(env, "clientId must be a number");
  }
  size_t length = 0;
  int64_t extra = -1;
  if (info.Length() > 3) napi_get_value_int64(env, info[3], &extra);
  const char *text =
      extra >= 0 ? TaggedUtf8Arg(env, info[1], extra, &length) : Utf8Arg(env, info[1], "request", &length);
  bool direct = true;
  if (info.Length() > 2) napi_get_value_bool(env, info[2], &direct);
  ProcessSender(api)->Send(client_id, text, length, direct);
  return env.Undefined();
}

Napi::Value Execute(const Napi::CallbackInfo &info) {
  auto env = info.Env();
  const TdJsonApi *api = RequireApi(env);
  if (info.Length() < 1) throw Napi::TypeError::New(env, "execute(request: string)");
  // The result lives in TDLib's thread-local storage until the next td_execute: copy it right away.
  const char *result = api->execute(Utf8Arg(env, info[0], "request"));
  if (result == nullptr) return env.Null();
  return Napi::String::New(env, result);
}

uint32_t OptionalUint(Napi::Object options, const char *name, uint32_t fallback, uint32_t min) {
  Napi::Value value = options.Get(name);
  if (!value.IsNumber()) return fallback;
  int64_t n = value.As<Napi::Number>().Int64Value();
  if (n < static_cast<int64_t>(min)) return min;
  return n > static_cast<int64_t>(UINT32_MAX) ? UINT32_MAX : static_cast<uint32_t>(n);
}

Napi::Value StartReceiver(const Napi::CallbackInfo &info) {
  auto env = info.Env();
  const TdJsonApi *api = RequireApi(env);
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(env, "startReceiver(onReady: () => void, options?)");
  }
  ReceiverOptions options;
  if (info.Length() > 1 && info[1].IsObject()) {
    auto o = info[1].As<Napi::Object>();
    Napi::Value timeout = o.Get("timeoutSeconds");
    if (timeout.IsNumber()) options.timeout_seconds = timeout.As<Napi::Number>().DoubleValue();
    if (!(options.timeout_seconds > 0)) options.timeout_seconds = 1.0;
    options.max_batch_objects = OptionalUint(o, "maxBatchObjects", options.max_batch_objects, 1);
    options.max_batch_bytes = OptionalUint(o, "maxBatchBytes", options.max_batch_bytes, 1024);
    options.max_pending_batches = OptionalUint(o, "maxPendingBatches", options.max_pending_batches, 1);
  }
  Receiver *receiver = Receiver::Start(env, info[0].As<Napi::Function>(), api, options);
  receiver->Unref(env);  // JS refs it while clients are open
  return env.Undefined();
}

Napi::Value StopReceiver(const Napi::CallbackInfo &info) {
  auto env = info.Env();
  Receiver *receiver = ActiveReceiver();
  if (receiver == nullptr) {
    auto done = Napi::Promise::Deferred::New(env);
    done.Resolve(env.Undefined());
    return done.Promise();
  }
  return receiver->Stop(env);
}

Napi::Value TakeBatch(const Napi::CallbackInfo &info) {
  Receiver *receiver = ActiveReceiver();
  return receiver == nullptr ? info.Env().Null() : receiver->Take(info.Env());
}

Napi::Value SetReceiverRef(const Napi::CallbackInfo &info) {
  auto env = info.Env();
  Receiver *receiver = ActiveReceiver();
  if (receiver != nullptr) {
    if (info.Length() > 0 && info[0].ToBoolean().Value()) receiver->Ref(env);
    else receiver->Unref(env);
  }
  return env.Undefined();
}

Napi::Value ReceiverStats(const Napi::CallbackInfo &info) {
  auto env = info.Env();
  Receiver *receiver = ActiveReceiver();
  return receiver == nullptr ? env.Null() : Napi::Value(receiver->Stats(env));
}

Napi::Value StopSender(const Napi::CallbackInfo &info) {
  StopProcessSender();
  return info.Env().Undefined();
}

Napi::Value SenderStats(const Napi::CallbackInfo &info) {
  auto env = info.Env();
  auto stats = Napi::Object::New(env);
  const TdJsonApi *api = Api();
  Sender *sender = api == nullptr ? nullptr : ProcessSender(api);
  stats.Set("direct", Napi::Number::New(env, sender == nullptr ? 0 : static_cast<double>(sender->direct())));
  stats.Set("queued", Napi::Number::New(env, sender == nullptr ? 0 : static_cast<double>(sender->queued())));
  stats.Set("threadId",
            Napi::Number::New(env, sender == nullptr ? 0 : static_cast<double>(sender->thread_id())));
  return stats;
}

void CleanupSender(void *) { StopProcessSender(); }

Napi::Value SetClientDeadline(const Napi::CallbackInfo &info) {
  auto env = info.Env();
  const TdJsonApi *api = RequireApi(env);
  int32_t client_id = 0;
  if (info.Length() < 2 || !info[1].IsNumber() || napi_get_value_int32(env, info[0], &client_id) != napi_ok) {
    throw Napi::TypeError::New(env, "setClientDeadline(clientId: number, remainingMs: number)");
  }
  double remaining_ms = info[1].As<Napi::Number>().DoubleValue();
  if (std::isnan(remaining_ms)) throw Napi::TypeError::New(env, "remainingMs must not be NaN");
  FenceSetDeadline(api, client_id, remaining_ms);
  return env.Undefined();
}

Napi::Value ConfigureFence(const Napi::CallbackInfo &info) {
  auto env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "configureFence({ exitGraceMs })");
  Napi::Value grace = info[0].As<Napi::Object>().Get("exitGraceMs");
  if (!grace.IsUndefined()) {
    double ms = grace.IsNumber() ? grace.As<Napi::Number>().DoubleValue() : -1;
    if (!(ms >= 0)) throw Napi::TypeError::New(env, "exitGraceMs must be a number >= 0");
    FenceConfigure(ms);
  }
  return env.Undefined();
}

Napi::Value FenceStatsJs(const Napi::CallbackInfo &info) {
  auto env = info.Env();
  FenceCounters counters = FenceStats();
  auto stats = Napi::Object::New(env);
  stats.Set("fencedClients", Napi::Number::New(env, static_cast<double>(counters.fenced_clients)));
  stats.Set("blockedRequests", Napi::Number::New(env, static_cast<double>(counters.blocked_requests)));
  stats.Set("watchdogCloses", Napi::Number::New(env, static_cast<double>(counters.watchdog_closes)));
  return stats;
}

void CleanupFence(void *) { StopFenceWatchdog(); }

Napi::Value SetLogCallbackJs(const Napi::CallbackInfo &info) {
  auto env = info.Env();
  const TdJsonApi *api = RequireApi(env);
  if (info.Length() < 2 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(env, "setLogCallback(maxVerbosity: number, callback: function | null)");
  }
  if (info[1].IsFunction()) {
    SetLogCallback(env, api, info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Function>());
  } else {
    ClearLogCallback(api);
  }
  return env.Undefined();
}

Napi::Value DroppedLogs(const Napi::CallbackInfo &info) {
  return Napi::Number::New(info.Env(), static_cast<double>(DroppedLogMessages()));
}

}  // namespace
}  // namespace tdaddon

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace tdaddon;
  exports.Set("load", Napi::Function::New(env, Load, "load"));
  exports.Set("createClientId", Napi::Function::New(env, CreateClientId, "createClientId"));
  exports.Set("send", Napi::Function::New(env, Send, "send"));
  exports.Set("execute", Napi::Function::New(env, Execute, "execute"));
  exports.Set("startReceiver", Napi::Function::New(env, StartReceiver, "startReceiver"));
  exports.Set("takeBatch", Napi::Function::New(env, TakeBatch, "takeBatch"));
  exports.Set("stopReceiver", Napi::Function::New(env, StopReceiver, "stopReceiver"));
  exports.Set("setReceiverRef", Napi::Function::New(env, SetReceiverRef, "setReceiverRef"));
  exports.Set("receiverStats", Napi::Function::New(env, ReceiverStats, "receiverStats"));
  exports.Set("stopSender", Napi::Function::New(env, StopSender, "stopSender"));
  exports.Set("senderStats", Napi::Function::New(env, SenderStats, "senderStats"));
  exports.Set("setLogCallback", Napi::Function::New(env, SetLogCallbackJs, "setLogCallback"));
  exports.Set("droppedLogMessages", Napi::Function::New(env, DroppedLogs, "droppedLogMessages"));
  exports.Set("setClientDeadline", Napi::Function::New(env, SetClientDeadline, "setClientDeadline"));
  exports.Set("configureFence", Napi::Function::New(env, ConfigureFence, "configureFence"));
  exports.Set("fenceStats", Napi::Function::New(env, FenceStatsJs, "fenceStats"));
  // Queued requests are sent, and the thread ended, before the environment (and libtdjson) goes away.
  AddCleanupHookOnce(env, CleanupSender);
  // The watchdog must not act on (or exit) a process whose environment is already being torn down.
  AddCleanupHookOnce(env, CleanupFence);
  return exports;
}

NODE_API_MODULE(tdjson_addon, Init)
