// The session fence: once a client's Lease deadline has passed, nothing but `close` reaches TDLib for it.
// JS checks its Leases too, but JS can be paused (SIGSTOP, a VM stall, a blocked event loop) while
// TDLib's threads and the sender thread keep running; a request that reaches TDLib after another pod took
// the account over puts two clients on one auth key, and Telegram then drops the key. So the check also
// sits right before every td_send, and a watchdog thread closes overdue clients itself and ends the
// process when one does not close in time (a crash is safe: the Leases expire, the accounts move on).
//
// Deadlines are on CLOCK_BOOTTIME, which keeps running while the machine is suspended: a Lease in the
// API server expires by wall time, not by the time this process was scheduled.
//
// A deadline that has passed is final: a later setClientDeadline cannot extend or clear it, and requests
// for the client stay dropped after it has closed. A renewal arriving after the deadline (JS resumed from
// a pause and renews by habit) proves nothing about who holds the session now. A client that closed
// leaves the registry; deadlines set for it afterwards are ignored.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "tdjson_lib.h"

namespace tdaddon {

// Also FENCE_WATCHDOG_EXIT_CODE in native/index.ts.
constexpr int kFenceWatchdogExitCode = 70;
constexpr double kDefaultFenceExitGraceMs = 3000;

struct FenceCounters {
  uint64_t fenced_clients = 0;
  uint64_t blocked_requests = 0;
  uint64_t watchdog_closes = 0;
};

// True while some client has a deadline: the only thing the send path reads when nothing is fenced.
extern std::atomic<bool> g_fence_armed;

bool FenceAllowsSendSlow(int32_t client_id, const char *request);

// Right before td_send (`request` NUL-terminated). False: drop the request, it was counted as blocked.
inline bool FenceAllowsSend(int32_t client_id, const char *request) {
  return !g_fence_armed.load(std::memory_order_acquire) || FenceAllowsSendSlow(client_id, request);
}

// remaining_ms: +Infinity clears the deadline, <= 0 means it has already passed. Not NaN.
void FenceSetDeadline(const TdJsonApi *api, int32_t client_id, double remaining_ms);
void FenceConfigure(double exit_grace_ms);
FenceCounters FenceStats();

// The receive thread shows it every object td_receive returned; notices authorizationStateClosed.
void FenceObserveReceived(const char *object, size_t length);

// Ends the watchdog thread (environment teardown); a later FenceSetDeadline starts a new one.
void StopFenceWatchdog();

// `{"@type":"close"}`, optionally with one `"@extra":<integer>` member first or last, and nothing else.
bool IsCloseRequest(const char *request);

}  // namespace tdaddon
