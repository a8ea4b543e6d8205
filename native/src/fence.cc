#include "fence.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace tdaddon {

std::atomic<bool> g_fence_armed{false};

namespace {

constexpr int64_t kNanosPerMs = 1000000;
// The watchdog never sleeps longer than this: its timed wait runs on CLOCK_MONOTONIC, which stands
// still while the machine is suspended, so after a resume it must look again soon on its own.
constexpr int64_t kMaxSleepNs = 50 * kNanosPerMs;
// Far beyond any Lease, and small enough that now + it cannot overflow.
constexpr double kMaxRemainingMs = 1e12;
// Tombstones are one bit per client id; TDLib numbers clients from 1 upwards and never reuses an id.
constexpr int32_t kMaxTombstoneId = 1 << 26;
constexpr const char kCloseRequest[] = R"({"@type":"close"})";

int64_t BootNanos() {
  timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct Entry {
  int64_t deadline_ns;
  // A close was forwarded (by JS or by the watchdog): the watchdog then only waits for it to finish.
  bool close_sent = false;
};

struct Registry {
  std::mutex mutex;
  std::condition_variable wake;
  std::unordered_map<int32_t, Entry> entries;
  // Clients seen closed. A deadline set for one afterwards (JS renewing a Lease before it processed the
  // close) would otherwise fence a client that can never report Closed again, and the watchdog would
  // end the process over it.
  std::vector<bool> closed;
  // Clients that closed after their deadline had passed. Their requests stay dropped: a passed deadline
  // is final, even once the client is gone (nothing can answer them but an error anyway).
  std::vector<bool> fenced_out;
  bool any_fenced_out = false;
  int64_t exit_grace_ns = static_cast<int64_t>(kDefaultFenceExitGraceMs) * kNanosPerMs;
  // When the watchdog looks next; a new deadline only wakes it when it is earlier than that, so the
  // frequent renewals (which move deadlines later) cost no thread wake-up.
  int64_t next_look_ns = INT64_MAX;
  const TdJsonApi *api = nullptr;
  std::thread thread;
  bool running = false;
  bool stopping = false;
  std::atomic<uint64_t> blocked{0};
  std::atomic<uint64_t> watchdog_closes{0};

  static bool Has(const std::vector<bool> &bits, int32_t id) {
    return id >= 0 && static_cast<size_t>(id) < bits.size() && bits[static_cast<size_t>(id)];
  }
  static void Mark(std::vector<bool> &bits, int32_t id) {
    if (id < 0 || id >= kMaxTombstoneId) return;
    if (static_cast<size_t>(id) >= bits.size()) bits.resize(static_cast<size_t>(id) + 1024);
    bits[static_cast<size_t>(id)] = true;
  }
  void UpdateArmed() { g_fence_armed.store(!entries.empty() || any_fenced_out, std::memory_order_release); }
};

// Never destroyed: the watchdog may still run while static destructors do at exit.
Registry &R() {
  static Registry *registry = new Registry();
  return *registry;
}

[[noreturn]] void ExitOverdue(int32_t client_id, int64_t late_ns) {
  char line[192];
  int length = std::snprintf(line, sizeof line,
                             "tdlib-runtime: session fence watchdog: client %d still open %lld ms past its Lease "
                             "deadline; exiting\n",
                             client_id, static_cast<long long>(late_ns / kNanosPerMs));
  if (length > 0) {
    ssize_t ignored = write(STDERR_FILENO, line, static_cast<size_t>(length));
    (void)ignored;
  }
  // _exit: no atexit handlers or static destructors, which would run into TDLib's live threads (and
  // TDLib aborts an exit with open clients anyway).
  _exit(kFenceWatchdogExitCode);
}

void WatchdogLoop() {
  pthread_setname_np(pthread_self(), "tdjson-fence");
  Registry &r = R();
  std::vector<int32_t> to_close;
  std::unique_lock<std::mutex> lock(r.mutex);
  while (!r.stopping) {
    int64_t now = BootNanos();
    int64_t next = INT64_MAX;
    int32_t overdue_id = 0;
    int64_t overdue_ns = -1;
    for (auto &item : r.entries) {
      Entry &entry = item.second;
      if (now < entry.deadline_ns) {
        if (entry.deadline_ns < next) next = entry.deadline_ns;
        continue;
      }
      int64_t exit_at = entry.deadline_ns + r.exit_grace_ns;
      // Measured from the deadline, not from the close: a process resuming later than that does not try
      // to close first. Ending it is safe, and every moment it lives on is overlap with the new holder.
      if (now >= exit_at) {
        if (now - entry.deadline_ns > overdue_ns) {
          overdue_id = item.first;
          overdue_ns = now - entry.deadline_ns;
        }
        continue;
      }
      if (exit_at < next) next = exit_at;
      if (!entry.close_sent) {
        entry.close_sent = true;
        to_close.push_back(item.first);
      }
    }
    if (overdue_ns >= 0) ExitOverdue(overdue_id, overdue_ns);
    if (!to_close.empty()) {
      r.watchdog_closes.fetch_add(to_close.size(), std::memory_order_relaxed);
      const TdJsonApi *api = r.api;
      lock.unlock();
      // td_send is thread-safe; anything JS queued for these clients meanwhile is dropped by the fence.
      for (int32_t id : to_close) api->send(id, kCloseRequest);
      to_close.clear();
      lock.lock();
      continue;  // deadlines may have changed while the lock was free
    }
    if (r.entries.empty()) {
      r.next_look_ns = INT64_MAX;
      r.wake.wait(lock);
    } else {
      int64_t sleep_ns = std::min(next - now, kMaxSleepNs);
      r.next_look_ns = now + sleep_ns;
      r.wake.wait_for(lock, std::chrono::nanoseconds(sleep_ns));
    }
  }
}

const char *SkipExtra(const char *p) {
  static constexpr char kKey[] = R"("@extra":)";
  if (std::strncmp(p, kKey, sizeof kKey - 1) != 0) return nullptr;
  p += sizeof kKey - 1;
  if (*p == '-') p++;
  const char *digits = p;
  while (*p >= '0' && *p <= '9' && p - digits < 20) p++;
  return p == digits ? nullptr : p;
}

int32_t ParseClientId(const char *p, const char *end) {
  int64_t value = 0;
  bool negative = p < end && *p == '-';
  if (negative) p++;
  const char *digits = p;
  while (p < end && *p >= '0' && *p <= '9' && p - digits < 10) value = value * 10 + (*p++ - '0');
  if (p == digits || value > INT32_MAX) return 0;
  return static_cast<int32_t>(negative ? -value : value);
}

}  // namespace

bool IsCloseRequest(const char *request) {
  static constexpr char kType[] = R"("@type":"close")";
  const char *p = request;
  if (*p++ != '{') return false;
  bool extra_seen = false;
  if (*p == '"' && p[1] == '@' && p[2] == 'e') {
    p = SkipExtra(p);
    if (p == nullptr || *p++ != ',') return false;
    extra_seen = true;
  }
  if (std::strncmp(p, kType, sizeof kType - 1) != 0) return false;
  p += sizeof kType - 1;
  if (!extra_seen && *p == ',') {
    p = SkipExtra(p + 1);
    if (p == nullptr) return false;
  }
  return p[0] == '}' && p[1] == '\0';
}

bool FenceAllowsSendSlow(int32_t client_id, const char *request) {
  Registry &r = R();
  std::lock_guard<std::mutex> lock(r.mutex);
  auto it = r.entries.find(client_id);
  if (it == r.entries.end()) {
    if (!Registry::Has(r.fenced_out, client_id) || IsCloseRequest(request)) return true;
    r.blocked.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // Checked even before the deadline: a close JS already sent spares the watchdog its own.
  if (IsCloseRequest(request)) {
    it->second.close_sent = true;
    return true;
  }
  if (BootNanos() < it->second.deadline_ns) return true;
  r.blocked.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void FenceSetDeadline(const TdJsonApi *api, int32_t client_id, double remaining_ms) {
  Registry &r = R();
  int64_t now = BootNanos();
  bool notify = false;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    if (Registry::Has(r.closed, client_id)) return;
    auto it = r.entries.find(client_id);
    if (it != r.entries.end() && now >= it->second.deadline_ns) return;  // passed: final
    if (std::isinf(remaining_ms) && remaining_ms > 0) {
      if (it != r.entries.end()) r.entries.erase(it);
      r.UpdateArmed();
      return;
    }
    int64_t deadline = now;
    if (remaining_ms > 0) {
      deadline += static_cast<int64_t>(std::min(remaining_ms, kMaxRemainingMs) * kNanosPerMs);
    }
    if (it == r.entries.end()) {
      r.entries.emplace(client_id, Entry{deadline});
    } else {
      it->second.deadline_ns = deadline;
    }
    g_fence_armed.store(true, std::memory_order_release);
    if (r.api == nullptr) r.api = api;
    if (!r.running) {
      r.running = true;
      r.stopping = false;
      r.thread = std::thread(WatchdogLoop);
    } else {
      notify = deadline < r.next_look_ns;
    }
  }
  if (notify) r.wake.notify_one();
}

void FenceConfigure(double exit_grace_ms) {
  Registry &r = R();
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    r.exit_grace_ns = static_cast<int64_t>(std::min(std::max(exit_grace_ms, 0.0), kMaxRemainingMs) * kNanosPerMs);
  }
  r.wake.notify_one();
}

FenceCounters FenceStats() {
  Registry &r = R();
  FenceCounters counters;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    counters.fenced_clients = r.entries.size();
  }
  counters.blocked_requests = r.blocked.load(std::memory_order_relaxed);
  counters.watchdog_closes = r.watchdog_closes.load(std::memory_order_relaxed);
  return counters;
}

void FenceObserveReceived(const char *object, size_t length) {
  // TDLib writes '@type' first: one short compare turns away nearly every object.
  static constexpr char kPrefix[] = R"({"@type":"updateAuthorizationState")";
  static constexpr char kClosed[] = R"("authorizationStateClosed")";
  static constexpr char kClientId[] = R"("@client_id":)";
  constexpr size_t kPrefixLength = sizeof kPrefix - 1;
  constexpr size_t kClientIdLength = sizeof kClientId - 1;
  if (length < kPrefixLength || std::memcmp(object, kPrefix, kPrefixLength) != 0) return;
  if (memmem(object, length, kClosed, sizeof kClosed - 1) == nullptr) return;
  // '@client_id' is the last member TDLib appends: look for it from the end.
  const char *end = object + length;
  const char *found = nullptr;
  for (const char *p = end - kClientIdLength; p >= object; p--) {
    if (*p == '"' && std::memcmp(p, kClientId, kClientIdLength) == 0) {
      found = p + kClientIdLength;
      break;
    }
  }
  if (found == nullptr) return;
  int32_t client_id = ParseClientId(found, end);
  if (client_id <= 0) return;
  int64_t now = BootNanos();
  Registry &r = R();
  std::lock_guard<std::mutex> lock(r.mutex);
  Registry::Mark(r.closed, client_id);
  auto it = r.entries.find(client_id);
  if (it == r.entries.end()) return;
  if (now >= it->second.deadline_ns) {
    Registry::Mark(r.fenced_out, client_id);
    r.any_fenced_out = true;
  }
  r.entries.erase(it);
  r.UpdateArmed();
}

void StopFenceWatchdog() {
  Registry &r = R();
  std::thread thread;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    if (!r.running) return;
    r.stopping = true;
    thread = std::move(r.thread);
  }
  r.wake.notify_one();
  if (thread.joinable()) thread.join();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.running = false;
  r.stopping = false;
}

}  // namespace tdaddon
