// The reference: the same workloads driven from C++ straight against libtdjson's C interface, no JS.
// One thread does everything, the way an efficient C program would: it blocks in td_receive, takes every
// answer that is ready, and sends as many new requests as were answered (so sends reach TDLib in bursts,
// like ours), keeping `window` requests in flight over 100 clients. Nothing spins, so its CPU time is what
// libtdjson costs per request plus a trivial driver.
// Prints one JSON line: {"throughput_rps":..., "seq_p50_us":..., "seq_p99_us":..., "process_cpu_us_per_req":...,
// "driver_thread_cpu_us_per_req":...} (the driver thread's share: td_send's parsing, td_receive, the loop).
//
//   c++ -O2 -std=c++17 -o c-baseline c-baseline.cc -ldl
//   ./c-baseline /path/to/libtdjson.so [requests=100000] [window=1000]
#include <dlfcn.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using CreateClientId = int (*)();
using Send = void (*)(int, const char *);
using Receive = const char *(*)(double);
using Execute = const char *(*)(const char *);

using Clock = std::chrono::steady_clock;

constexpr int kClients = 100;

// RUSAGE_SELF: the whole process; RUSAGE_THREAD: this (the driver) thread, the rest being TDLib's.
double CpuSeconds(int who = RUSAGE_SELF) {
  rusage usage{};
  getrusage(who, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double Percentile(std::vector<double> samples, double p) {
  std::sort(samples.begin(), samples.end());
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(samples.size()));
  return samples[std::min(rank, samples.size() - 1)];
}

struct TdJson {
  CreateClientId create_client_id;
  Send send;
  Receive receive;
  Execute execute;
};

bool IsSquareAnswer(const char *object) { return std::strstr(object, "\"testInt\"") != nullptr; }

// Blocks until at least one object is ready, then takes every ready one; returns the testInt answers.
long ReceiveReady(const TdJson &td) {
  long answers = 0;
  const char *object = td.receive(1.0);
  while (object != nullptr) {
    if (IsSquareAnswer(object)) answers++;
    object = td.receive(0);
  }
  return answers;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s libtdjson.so [requests] [window]\n", argv[0]);
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (lib == nullptr) {
    std::fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
    return 2;
  }
  TdJson td{reinterpret_cast<CreateClientId>(dlsym(lib, "td_create_client_id")),
            reinterpret_cast<Send>(dlsym(lib, "td_send")), reinterpret_cast<Receive>(dlsym(lib, "td_receive")),
            reinterpret_cast<Execute>(dlsym(lib, "td_execute"))};
  const long total = argc > 2 ? std::atol(argv[2]) : 100000;
  const long window = argc > 3 ? std::atol(argv[3]) : 1000;
  td.execute(R"({"@type":"setLogVerbosityLevel","new_verbosity_level":0})");

  std::vector<int> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(td.create_client_id());

  char request[128];
  auto send_square = [&](long i) {
    std::snprintf(request, sizeof request, R"({"@type":"testSquareInt","x":%ld,"@extra":%ld})", i % 1000, i);
    td.send(clients[static_cast<size_t>(i % kClients)], request);
  };

  // Sequential round trips (after a warm-up), waiting in td_receive like any blocking client.
  std::vector<double> rtt;
  for (long i = 0; i < 11000; ++i) {
    auto started = Clock::now();
    send_square(i);
    long answered = 0;
    while (answered == 0) answered = ReceiveReady(td);
    if (i >= 1000) rtt.push_back(std::chrono::duration<double, std::micro>(Clock::now() - started).count());
  }

  // Pipelined: `window` requests in flight; each batch of answers is replaced by as many new requests.
  double cpu_started = CpuSeconds();
  double driver_cpu_started = CpuSeconds(RUSAGE_THREAD);
  auto started = Clock::now();
  long sent = 0;
  long answered = 0;
  while (sent < std::min(window, total)) send_square(sent++);
  while (answered < total) {
    long got = ReceiveReady(td);
    answered += got;
    for (long k = 0; k < got && sent < total; ++k) send_square(sent++);
  }
  double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  double cpu_us_per_request = (CpuSeconds() - cpu_started) / static_cast<double>(total) * 1e6;
  double driver_cpu_us_per_request =
      (CpuSeconds(RUSAGE_THREAD) - driver_cpu_started) / static_cast<double>(total) * 1e6;

  // Every client must be closed before exit, or TDLib aborts the process.
  for (int id : clients) td.send(id, R"({"@type":"close"})");
  for (int closed = 0; closed < kClients;) {
    const char *object = td.receive(1.0);
    if (object != nullptr && std::strstr(object, "authorizationStateClosed") != nullptr) closed++;
  }
  std::printf(
      "{\"throughput_rps\":%.0f,\"seq_p50_us\":%.1f,\"seq_p99_us\":%.1f,\"process_cpu_us_per_req\":%.2f,"
      "\"driver_thread_cpu_us_per_req\":%.2f}\n",
      total / seconds, Percentile(rtt, 50), Percentile(rtt, 99), cpu_us_per_request, driver_cpu_us_per_request);
  return 0;
}
