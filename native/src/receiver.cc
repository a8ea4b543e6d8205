#include "receiver.h"

#include <pthread.h>

#include <chrono>
#include <cstring>

#include "fence.h"

namespace tdaddon {
namespace {

std::mutex g_active_mutex;
Receiver *g_active = nullptr;

// td_send to client id 0 is always answered at once with "Invalid TDLib instance specified": the cheapest
// way to make a blocked td_receive return so that stopping does not wait for the receive timeout.
constexpr const char *kWakeRequest = R"({"@type":"getOption","name":"version","@extra":"tdjson-addon-wake"})";
// TDLib appends '@extra' (and '@client_id', absent for id 0) last, so the answer ends with this.
constexpr const char kWakeSuffix[] = R"("@extra":"tdjson-addon-wake"})";
constexpr size_t kWakeSuffixLength = sizeof(kWakeSuffix) - 1;

bool IsWakeAnswer(const char *object, size_t length) {
  return length >= kWakeSuffixLength &&
         memcmp(object + length - kWakeSuffixLength, kWakeSuffix, kWakeSuffixLength) == 0;
}

uint64_t NanosSince(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace

Receiver *ActiveReceiver() {
  std::lock_guard<std::mutex> lock(g_active_mutex);
  return g_active;
}

Receiver *Receiver::Start(Napi::Env env, Napi::Function on_ready, const TdJsonApi *api, ReceiverOptions options) {
  std::lock_guard<std::mutex> lock(g_active_mutex);
  if (g_active != nullptr) {
    throw Napi::Error::New(env, "a TDLib receive loop is already running in this process (td_receive is "
                                "process-global); stop it before starting another");
  }
  auto *self = new Receiver(api, options);
  // Queue size 2: only wake-ups travel through it, and at most one is outstanding.
  self->tsfn_ = Tsfn::New(env, on_ready, "tdjson-receive", 2, 1, self, Finalize, static_cast<void *>(nullptr));
  self->thread_ = std::thread(&Receiver::Loop, self);
  g_active = self;
  return self;
}

void Receiver::Loop() {
  pthread_setname_np(pthread_self(), "tdjson-receive");  // shows in top -H, perf, gdb
  while (!stop_.load(std::memory_order_acquire)) {
    const char *first = api_->receive(options_.timeout_seconds);
    if (first == nullptr) continue;
    std::unique_ptr<Batch> batch = Collect(first);
    if (batch == nullptr) continue;
    if (!Enqueue(std::move(batch))) break;
  }
  tsfn_.Release();
}

std::unique_ptr<Batch> Receiver::Collect(const char *result) {
  std::unique_ptr<Batch> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!spare_.empty()) {
      batch = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  if (batch == nullptr) {
    batch = std::make_unique<Batch>();
    batch->json.reserve(16 * 1024);
  }
  batch->json.clear();
  batch->count = 0;
  batch->json.push_back('[');
  // td_receive's result is only valid until the next call, so each object is copied before the next.
  while (result != nullptr) {
    size_t length = strlen(result);
    // Here, not in JS: the fence must learn of a close even while JS is blocked.
    FenceObserveReceived(result, length);
    if (!IsWakeAnswer(result, length)) {
      if (batch->count != 0) batch->json.push_back(',');
      batch->json.append(result, length);
      batch->count++;
      if (batch->count >= options_.max_batch_objects || batch->json.size() >= options_.max_batch_bytes) break;
    }
    result = api_->receive(0);
  }
  if (batch->count == 0) {
    Recycle(std::move(batch));
    return nullptr;
  }
  batch->json.push_back(']');
  batches_.fetch_add(1, std::memory_order_relaxed);
  objects_.fetch_add(batch->count, std::memory_order_relaxed);
  bytes_.fetch_add(batch->json.size(), std::memory_order_relaxed);
  if (batch->count > largest_batch_.load(std::memory_order_relaxed)) {
    largest_batch_.store(batch->count, std::memory_order_relaxed);  // only this thread writes it
  }
  return batch;
}

// Returns false when the loop must end (stopping, or the JS side is gone).
bool Receiver::Enqueue(std::unique_ptr<Batch> batch) {
  bool wake;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (queue_.size() >= options_.max_pending_batches) {
      auto started = std::chrono::steady_clock::now();
      // Backpressure: wait for JS to work the queue down.
      waiting_for_room_ = true;
      not_full_.wait(lock, [this] { return queue_.size() < options_.max_pending_batches || stop_.load(); });
      waiting_for_room_ = false;
      blocked_ns_.fetch_add(NanosSince(started), std::memory_order_relaxed);
    }
    if (stop_.load()) return false;
    queue_.push_back(std::move(batch));
    wake = !wake_pending_;
    wake_pending_ = true;
  }
  if (!wake) return true;
  wakeups_.fetch_add(1, std::memory_order_relaxed);
  return tsfn_.NonBlockingCall() == napi_ok;
}

void Receiver::CallJs(Napi::Env env, Napi::Function on_ready, Receiver *, std::nullptr_t *) {
  if (env == nullptr || on_ready == nullptr) return;
  on_ready.Call({});
}

Napi::Value Receiver::Take(Napi::Env env) {
  std::unique_ptr<Batch> batch;
  bool more;
  bool make_room = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queue_.empty()) {
      wake_pending_ = false;
      return env.Null();
    }
    batch = std::move(queue_.front());
    queue_.pop_front();
    more = !queue_.empty();
    // Emptied: the next batch must wake JS again, since JS stops pulling now.
    if (!more) wake_pending_ = false;
    if (waiting_for_room_ && queue_.size() <= options_.max_pending_batches / 2) {
      waiting_for_room_ = false;
      make_room = true;
    }
  }
  if (make_room) not_full_.notify_one();
  napi_value text;
  if (napi_create_string_utf8(env, batch->json.data(), batch->json.size(), &text) != napi_ok) {
    throw Napi::Error::New(env, "cannot create a JS string for a TDLib batch of " +
                                    std::to_string(batch->json.size()) + " bytes");
  }
  Recycle(std::move(batch));
  auto result = Napi::Array::New(env, 2);
  result.Set(0u, Napi::Value(env, text));
  result.Set(1u, Napi::Boolean::New(env, more));
  return result;
}

void Receiver::Recycle(std::unique_ptr<Batch> batch) {
  // An unusually large batch (a big file list, a 1 MB message) is not worth keeping around.
  if (batch->json.capacity() > 256 * 1024) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (spare_.size() < options_.max_pending_batches) spare_.push_back(std::move(batch));
}

void Receiver::Wake() { api_->send(0, kWakeRequest); }

Napi::Promise Receiver::Stop(Napi::Env env) {
  if (!stopped_) {
    stopped_ = std::make_unique<Napi::Promise::Deferred>(env);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true, std::memory_order_release);
    }
    not_full_.notify_all();
    Wake();
    // Referenced so the process stays up until the thread has really exited.
    tsfn_.Ref(env);
  }
  return stopped_->Promise();
}

// Runs on the JS thread once the loop released the thread-safe function, or when the environment is
// torn down (the loop may then still be inside td_receive: wake it and wait, so the thread never
// outlives this object).
void Receiver::Finalize(Napi::Env env, void *, Receiver *self) {
  {
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->stop_.store(true, std::memory_order_release);
  }
  self->not_full_.notify_all();
  if (self->thread_.joinable()) {
    self->Wake();
    self->thread_.join();
  }
  {
    std::lock_guard<std::mutex> lock(g_active_mutex);
    if (g_active == self) g_active = nullptr;
  }
  if (self->stopped_ && env != nullptr) {
    try {
      self->stopped_->Resolve(env.Undefined());
    } catch (const Napi::Error &) {
      // The environment is shutting down; nobody is waiting for the promise any more.
    }
  }
  delete self;
}

Napi::Object Receiver::Stats(Napi::Env env) const {
  auto stats = Napi::Object::New(env);
  stats.Set("batches", Napi::Number::New(env, static_cast<double>(batches_.load())));
  stats.Set("objects", Napi::Number::New(env, static_cast<double>(objects_.load())));
  stats.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes_.load())));
  stats.Set("largestBatch", Napi::Number::New(env, static_cast<double>(largest_batch_.load())));
  stats.Set("wakeups", Napi::Number::New(env, static_cast<double>(wakeups_.load())));
  stats.Set("blockedMs", Napi::Number::New(env, static_cast<double>(blocked_ns_.load()) / 1e6));
  return stats;
}

}  // namespace tdaddon
