// The experiment and the preparation: the one definition of each, used by
// the store, the service, the server and the CLI alike.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "blade/core/spec/flag_validation.hpp"

namespace blade {

using SystemTime = std::chrono::system_clock::time_point;

enum class ExperimentStatus { Created, Running, Destroying, Destroyed, Failed };

std::string_view to_string(ExperimentStatus status);
std::optional<ExperimentStatus> experiment_status_from_string(std::string_view name);
// ChaosBlade's status names or ours, in any case: Created -> created,
// Success and Running -> running, Error -> failed, Destroyed -> destroyed.
std::optional<ExperimentStatus> parse_experiment_status(std::string_view name);
// Running or destroying: a fault may be in effect and must be rolled back.
bool is_active(ExperimentStatus status);
bool is_terminal(ExperimentStatus status);

struct Experiment {
  std::string uid;  // 16 lowercase hex characters
  std::string scope = "host";
  std::string target;
  std::string action;  // canonical
  FlagValues flags;    // validated, defaults applied
  ExperimentStatus status = ExperimentStatus::Created;
  std::string error;
  std::string executor;  // "inprocess:os", "external:chaos_os"
  std::string result_json = "{}";
  std::string restore_json;  // empty until create succeeded
  // The last destroy call's report (plugin ABI 1.4: a JSON object saying
  // what it found, e.g. that the fault was already gone); empty when no
  // destroy reported anything. Kept apart from result_json, which stays
  // exactly what create reported.
  std::string destroy_result_json;
  std::optional<std::int64_t> timeout_s;
  std::optional<SystemTime> deadline;
  std::string callback;
  SystemTime created_at{};
  std::optional<SystemTime> started_at;
  std::optional<SystemTime> finished_at;
  SystemTime updated_at{};
  // Destroy calls made by recovery at start, each counted before the call:
  // a daemon that keeps dying inside one is not sent into it again.
  std::int64_t recovery_attempts = 0;
  // No automatic destroy calls any more (a destroy crashed the daemon, or
  // recovery died in it too often); status stays destroying, error says why;
  // an operator destroys it with force once the host is checked.
  bool quarantined = false;
};

enum class PreparationStatus { Created, Running, Revoked, Failed };

std::string_view to_string(PreparationStatus status);
std::optional<PreparationStatus> preparation_status_from_string(std::string_view name);
// Created -> created, Running -> running, Error -> failed, Revoked ->
// revoked, and ours, in any case.
std::optional<PreparationStatus> parse_preparation_status(std::string_view name);

struct Preparation {
  std::string uid;
  std::string type;  // "jvm"
  FlagValues flags;
  PreparationStatus status = PreparationStatus::Created;
  std::string error;
  std::string executor;
  std::string result_json = "{}";
  std::string restore_json;
  SystemTime created_at{};
  SystemTime updated_at{};
};

// RFC 3339 UTC with milliseconds: "2026-11-21T22:33:22.123Z".
std::string format_time(SystemTime t);
std::optional<SystemTime> parse_time(std::string_view text);
// Any RFC 3339 time with seconds: "2027-01-31T00:00:00Z",
// "2027-01-31T02:00:00.5+02:00" (for configuration written by people).
std::optional<SystemTime> parse_rfc3339(std::string_view text);

// The API's JSON objects (docs/http-api.md): flags as strings, times RFC 3339 or null.
// to_json_text is the one definition of an experiment's JSON (one line, keys
// sorted); to_json is that text parsed, for callers that edit the object.
std::string to_json_text(const Experiment &e);
nlohmann::json to_json(const Experiment &e);
// Appended to `out` exactly as nlohmann::json's dump writes them: `text` as
// a JSON string (invalid UTF-8 replaced), flags as an object.
void append_json_string(std::string &out, std::string_view text);
void append_json_object(std::string &out, const FlagValues &flags);
nlohmann::json to_json(const Preparation &p);
// The inverse of to_json(Experiment), for clients of the API (the CLI).
// Throws blade::Error (InvalidArgument) naming the field that does not fit.
Experiment experiment_from_json(const nlohmann::json &j);

// 16 lowercase hex characters: 64 bits of a per-thread generator seeded
// once from the kernel's CSPRNG (getrandom), so no system call per uid.
std::string new_uid();

}  // namespace blade
