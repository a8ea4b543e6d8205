// libtdjson loaded at run time with dlopen. Only the multi-client interface is resolved: one receive
// loop serves every client of the process, which is what makes batching possible.
#pragma once

#include <string>

namespace tdaddon {

using td_create_client_id_t = int (*)();
using td_send_t = void (*)(int client_id, const char *request);
using td_receive_t = const char *(*)(double timeout);
using td_execute_t = const char *(*)(const char *request);
using td_log_message_callback_ptr = void (*)(int verbosity_level, const char *message);
using td_set_log_message_callback_t = void (*)(int max_verbosity_level, td_log_message_callback_ptr callback);

struct TdJsonApi {
  td_create_client_id_t create_client_id = nullptr;
  td_send_t send = nullptr;
  td_receive_t receive = nullptr;
  td_execute_t execute = nullptr;
  td_set_log_message_callback_t set_log_message_callback = nullptr;
};

// Loads `path` once per process (libtdjson's state is process-global). Loading the same path again is a
// no-op; a different path after a successful load is refused, since two TDLib copies would each run
// their own client manager. Returns an empty string on success, else a message naming the path.
std::string LoadTdJson(const std::string &path);

// The loaded API, or nullptr before a successful LoadTdJson.
const TdJsonApi *Api();
const std::string &LoadedPath();

}  // namespace tdaddon
