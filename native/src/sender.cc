#include "sender.h"

#include <sys/syscall.h>
#include <unistd.h>

#include "fence.h"

namespace tdaddon {

void Sender::Send(int32_t client_id, const char *text, size_t length, bool allow_direct) {
  bool notify = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (allow_direct && entries_.empty() && !busy_) {
      direct_.fetch_add(1, std::memory_order_relaxed);
    } else {
      entries_.push_back(Entry{client_id, text_.size()});
      text_.append(text, length + 1);  // keeps the NUL
      queued_.fetch_add(1, std::memory_order_relaxed);
      if (!thread_.joinable() && !stopping_) thread_ = std::thread(&Sender::Loop, this);
      // Cleared here, not by the woken thread, so a burst of sends costs one wake-up, not one each.
      notify = waiting_;
      waiting_ = false;
      text = nullptr;
    }
  }
  // Direct: nothing is queued or in flight, and only this (JS) thread enqueues, so order holds.
  if (text != nullptr) {
    if (FenceAllowsSend(client_id, text)) api_->send(client_id, text);
    return;
  }
  if (notify) wake_.notify_one();
}

void Sender::Loop() {
  // Not named: TDLib creates its scheduler threads from whichever thread first sends to a new client
  // group, and they would inherit the name.
  thread_id_.store(static_cast<int64_t>(syscall(SYS_gettid)), std::memory_order_relaxed);
  std::string text;
  std::vector<Entry> entries;
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    busy_ = false;
    if (entries_.empty()) {
      if (stopping_) break;
      waiting_ = true;
      wake_.wait(lock, [this] { return !entries_.empty() || stopping_; });
      waiting_ = false;
      continue;
    }
    text.swap(text_);
    entries.swap(entries_);
    busy_ = true;
    lock.unlock();
    // The fence is checked here, not when queued: a deadline may pass while the request waits.
    for (const Entry &entry : entries) {
      const char *request = text.data() + entry.offset;
      if (FenceAllowsSend(entry.client_id, request)) api_->send(entry.client_id, request);
    }
    text.clear();
    entries.clear();
    lock.lock();
  }
}

void Sender::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  // Allows a later Send to start a new thread, e.g. when a new backend is created in the same process.
  stopping_ = false;
}

namespace {
// Never destroyed: its thread is stopped by StopProcessSender (an environment cleanup hook) instead,
// because a static destructor could run after libtdjson's own and then call into it.
Sender *g_sender = nullptr;
}  // namespace

Sender *ProcessSender(const TdJsonApi *api) {
  if (g_sender == nullptr) g_sender = new Sender(api);
  return g_sender;
}

void StopProcessSender() {
  if (g_sender != nullptr) g_sender->Stop();
}

}  // namespace tdaddon
