// The ceiling: the same workload driven from C++ straight against libtdjson's C interface, no JS at all.
// One thread sends (keeping `window` requests in flight over 100 clients), one thread receives.
// Prints one JSON line: {"throughput_rps":..., "seq_p50_us":..., "seq_p99_us":..., "process_cpu_us_per_req":...}.
//
//   c++ -O2 -std=c++17 -o c-baseline c-baseline.cc -ldl -lpthread
//   ./c-baseline /path/to/libtdjson.so [requests=100000] [window=1000]
#include <dlfcn.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using CreateClientId = int (*)();
using Send = void (*)(int, const char *);
using Receive = const char *(*)(double);
using Execute = const char *(*)(const char *);

using Clock = std::chrono::steady_clock;

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double Percentile(std::vector<double> samples, double p) {
  std::sort(samples.begin(), samples.end());
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(samples.size()));
  return samples[std::min(rank, samples.size() - 1)];
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
  auto create_client_id = reinterpret_cast<CreateClientId>(dlsym(lib, "td_create_client_id"));
  auto send = reinterpret_cast<Send>(dlsym(lib, "td_send"));
  auto receive = reinterpret_cast<Receive>(dlsym(lib, "td_receive"));
  auto execute = reinterpret_cast<Execute>(dlsym(lib, "td_execute"));
  const long total = argc > 2 ? std::atol(argv[2]) : 100000;
  const long window = argc > 3 ? std::atol(argv[3]) : 1000;
  execute(R"({"@type":"setLogVerbosityLevel","new_verbosity_level":0})");

  std::vector<int> clients;
  for (int i = 0; i < 100; ++i) clients.push_back(create_client_id());
  std::atomic<long> answered{0};
  std::atomic<bool> closed_all{false};
  std::atomic<int> closed{0};
  std::thread receiver([&] {
    while (!closed_all.load()) {
      const char *object = receive(1.0);
      if (object == nullptr) continue;
      if (std::strstr(object, "\"testInt\"") != nullptr) answered.fetch_add(1);
      if (std::strstr(object, "authorizationStateClosed") != nullptr && closed.fetch_add(1) + 1 == 100) {
        closed_all.store(true);
      }
    }
  });

  char request[128];
  auto send_square = [&](long i) {
    std::snprintf(request, sizeof request, R"({"@type":"testSquareInt","x":%ld,"@extra":%ld})", i % 1000, i);
    send(clients[static_cast<size_t>(i % 100)], request);
  };

  // Sequential round trips (after a warm-up).
  std::vector<double> rtt;
  for (long i = 0; i < 11000; ++i) {
    long before = answered.load();
    auto started = Clock::now();
    send_square(i);
    while (answered.load() == before) std::this_thread::yield();
    if (i >= 1000) rtt.push_back(std::chrono::duration<double, std::micro>(Clock::now() - started).count());
  }

  // Pipelined: keep `window` requests in flight.
  long base = answered.load();
  double cpu_started = CpuSeconds();
  auto started = Clock::now();
  for (long sent = 0; sent < total;) {
    if (sent - (answered.load() - base) >= window) {
      std::this_thread::yield();
      continue;
    }
    send_square(sent++);
  }
  while (answered.load() - base < total) std::this_thread::yield();
  double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  // The sending thread spins while the window is full, so this overstates TDLib's own cost a little.
  double cpu_us_per_request = (CpuSeconds() - cpu_started) / static_cast<double>(total) * 1e6;

  for (int id : clients) send(id, R"({"@type":"close"})");
  receiver.join();
  std::printf("{\"throughput_rps\":%.0f,\"seq_p50_us\":%.1f,\"seq_p99_us\":%.1f,\"process_cpu_us_per_req\":%.2f}\n",
              total / seconds, Percentile(rtt, 50), Percentile(rtt, 99), cpu_us_per_request);
  return 0;
}
