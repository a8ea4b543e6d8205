// td_send parses the request JSON and builds TDLib's request object on the calling thread: about 5 us
// per request here, more than everything else our JS does per request. Under load that work moves to a
// sender thread, so the JS thread only copies the text into a queue. Single requests (the latency path)
// still go straight to td_send: a thread hop would add its wake-up time to every round trip.
//
// Order is preserved per process (and so per client): a request is sent directly only when nothing is
// queued or being sent by the thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tdjson_lib.h"

namespace tdaddon {

class Sender {
 public:
  explicit Sender(const TdJsonApi *api) : api_(api) {}

  // `text` must be NUL-terminated. With `allow_direct`, sends on the calling thread when the queue is idle.
  void Send(int32_t client_id, const char *text, size_t length, bool allow_direct);
  // Sends whatever is queued, then ends the thread. Safe to call more than once.
  void Stop();

  uint64_t direct() const { return direct_.load(std::memory_order_relaxed); }
  uint64_t queued() const { return queued_.load(std::memory_order_relaxed); }
  // The sender thread's kernel thread id (0 before it started): lets a profile tell its CPU time apart
  // from TDLib's threads, which share its unset name.
  int64_t thread_id() const { return thread_id_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    int32_t client_id;
    size_t offset;
  };
  void Loop();

  const TdJsonApi *api_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string text_;             // NUL-separated request texts
  std::vector<Entry> entries_;   // where each request of text_ starts
  bool busy_ = false;            // the thread holds a swapped-out batch it has not finished sending
  bool waiting_ = false;         // the thread sleeps on wake_
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<uint64_t> direct_{0};
  std::atomic<uint64_t> queued_{0};
  std::atomic<int64_t> thread_id_{0};
};

// The process's sender (libtdjson is process-global), created on first use.
Sender *ProcessSender(const TdJsonApi *api);
// Flushes and ends the sender thread, if any; a later Send starts a new one.
void StopProcessSender();

}  // namespace tdaddon
