// The receive loop: one thread per process calls td_receive and packs everything that is ready into
// batches (one JSON array text each), so JS pays one thread hop and one JSON.parse per batch instead of
// per object.
//
// Batches wait in a bounded queue that JS pulls from: the thread wakes JS once when the queue becomes
// non-empty, and JS takes one batch per event-loop turn until it is empty. Pulling (rather than having
// a thread-safe function push every batch) matters: Node dispatches up to 1000 queued thread-safe calls
// in one go, which under load would hold the event loop for the whole burst. When JS falls behind, the
// queue fills and the thread waits, so memory stays bounded and TDLib keeps the backlog.
#pragma once

#include <napi.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tdjson_lib.h"

namespace tdaddon {

struct ReceiverOptions {
  double timeout_seconds = 1.0;
  uint32_t max_batch_objects = 256;
  uint32_t max_batch_bytes = 1 << 20;
  uint32_t max_pending_batches = 8;
};

struct Batch {
  std::string json;
  uint32_t count = 0;
};

class Receiver {
 public:
  // Starts the thread; `on_ready()` runs on the JS thread whenever batches became available.
  static Receiver *Start(Napi::Env env, Napi::Function on_ready, const TdJsonApi *api, ReceiverOptions options);

  // JS thread: the oldest batch as [jsonArrayText, moreQueued], or null if there is none.
  Napi::Value Take(Napi::Env env);
  // Asks the loop to stop; the promise resolves once the thread has exited.
  Napi::Promise Stop(Napi::Env env);
  void Ref(Napi::Env env) { tsfn_.Ref(env); }
  void Unref(Napi::Env env) { tsfn_.Unref(env); }
  Napi::Object Stats(Napi::Env env) const;

 private:
  Receiver(const TdJsonApi *api, ReceiverOptions options) : api_(api), options_(options) {}
  static void CallJs(Napi::Env env, Napi::Function on_ready, Receiver *self, std::nullptr_t *unused);
  static void Finalize(Napi::Env env, void *unused, Receiver *self);
  void Loop();
  std::unique_ptr<Batch> Collect(const char *first);
  bool Enqueue(std::unique_ptr<Batch> batch);
  void Recycle(std::unique_ptr<Batch> batch);
  void Wake();

  using Tsfn = Napi::TypedThreadSafeFunction<Receiver, std::nullptr_t, CallJs>;

  const TdJsonApi *api_;
  const ReceiverOptions options_;
  Tsfn tsfn_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::unique_ptr<Napi::Promise::Deferred> stopped_;

  std::mutex mutex_;
  std::condition_variable not_full_;
  std::deque<std::unique_ptr<Batch>> queue_;
  // Batches JS has finished with, reused by the thread: no malloc/free pair per batch across threads.
  std::vector<std::unique_ptr<Batch>> spare_;
  // True from the wake-up call until JS has emptied the queue: at most one wake-up is ever in flight.
  bool wake_pending_ = false;
  // The thread waits for room in the queue; JS wakes it once the queue is down to half (not on every
  // batch it takes: each wake-up is a context switch competing with the JS thread for the CPU).
  bool waiting_for_room_ = false;

  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> objects_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> largest_batch_{0};
  std::atomic<uint64_t> wakeups_{0};
  std::atomic<uint64_t> blocked_ns_{0};
};

// The receiver currently running in this process, if any (td_receive is process-global: only one).
Receiver *ActiveReceiver();

}  // namespace tdaddon
