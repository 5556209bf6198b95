#include "blade/core/model/experiment.hpp"

#include <sys/random.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <limits>
#include <string_view>
#include <stdexcept>

#include <fmt/format.h>

#include "blade/core/model/bounded_json.hpp"
#include "blade/core/model/error.hpp"

namespace blade {

std::string_view to_string(ExperimentStatus status) {
  switch (status) {
    case ExperimentStatus::Created:
      return "created";
    case ExperimentStatus::Running:
      return "running";
    case ExperimentStatus::Destroying:
      return "destroying";
    case ExperimentStatus::Destroyed:
      return "destroyed";
    case ExperimentStatus::Failed:
      return "failed";
  }
  return "failed";
}

std::optional<ExperimentStatus> experiment_status_from_string(std::string_view name) {
  for (auto s : {ExperimentStatus::Created, ExperimentStatus::Running, ExperimentStatus::Destroying,
                 ExperimentStatus::Destroyed, ExperimentStatus::Failed})
    if (to_string(s) == name) return s;
  return std::nullopt;
}

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char &c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::optional<ExperimentStatus> parse_experiment_status(std::string_view name) {
  const std::string l = lower(name);
  if (l == "success") return ExperimentStatus::Running;
  if (l == "error") return ExperimentStatus::Failed;
  return experiment_status_from_string(l);
}

std::optional<PreparationStatus> parse_preparation_status(std::string_view name) {
  const std::string l = lower(name);
  if (l == "error") return PreparationStatus::Failed;
  return preparation_status_from_string(l);
}

bool is_active(ExperimentStatus s) {
  return s == ExperimentStatus::Running || s == ExperimentStatus::Destroying;
}

bool is_terminal(ExperimentStatus s) {
  return s == ExperimentStatus::Destroyed || s == ExperimentStatus::Failed;
}

std::string_view to_string(PreparationStatus status) {
  switch (status) {
    case PreparationStatus::Created:
      return "created";
    case PreparationStatus::Running:
      return "running";
    case PreparationStatus::Revoked:
      return "revoked";
    case PreparationStatus::Failed:
      return "failed";
  }
  return "failed";
}

std::optional<PreparationStatus> preparation_status_from_string(std::string_view name) {
  for (auto s : {PreparationStatus::Created, PreparationStatus::Running, PreparationStatus::Revoked,
                 PreparationStatus::Failed})
    if (to_string(s) == name) return s;
  return std::nullopt;
}

namespace {

void append_digits(std::string &out, long value, int width) {
  char buf[8];
  for (int i = width - 1; i >= 0; --i, value /= 10)
    buf[i] = static_cast<char>('0' + value % 10);
  out.append(buf, static_cast<std::size_t>(width));
}

}  // namespace

std::string format_time(SystemTime t) {
  auto ms = std::chrono::time_point_cast<std::chrono::milliseconds>(t);
  auto secs = std::chrono::floor<std::chrono::seconds>(ms);
  // An experiment's times mostly fall in the same second (a create and its
  // response, a destroy and its audit line), so each thread keeps the date
  // and time of the last second it formatted and only adds the milliseconds.
  thread_local std::int64_t cached_second = std::numeric_limits<std::int64_t>::min();
  thread_local std::string cached_prefix;  // "2026-11-21T22:33:22."
  const std::int64_t second = secs.time_since_epoch().count();
  if (second != cached_second) {
    std::time_t tt = std::chrono::system_clock::to_time_t(secs);
    std::tm tm{};
    ::gmtime_r(&tt, &tm);
    cached_prefix = fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.", tm.tm_year + 1900,
                                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_second = second;
  }
  std::string out;
  out.reserve(cached_prefix.size() + 4);
  out += cached_prefix;
  append_digits(out, static_cast<long>((ms - secs).count()), 3);
  out += 'Z';
  return out;
}

namespace {

// A UTC calendar time; nullopt for fields out of range.
std::optional<SystemTime> from_utc_fields(int y, int mo, int d, int h, int mi, int s) {
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 ||
      s > 60)
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  std::time_t tt = ::timegm(&tm);
  if (tt == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(tt);
}

}  // namespace

std::optional<SystemTime> parse_time(std::string_view text) {
  // Exactly the form format_time writes; the store reads nothing else.
  int y, mo, d, h, mi, s, ms;
  char z = 0;
  std::string buf(text);
  if (std::sscanf(buf.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &s, &ms,
                  &z) != 8 ||
      z != 'Z' || buf.size() != 24) {
    return std::nullopt;
  }
  auto t = from_utc_fields(y, mo, d, h, mi, s);
  if (!t) return std::nullopt;
  return *t + std::chrono::milliseconds(ms);
}

std::optional<SystemTime> parse_rfc3339(std::string_view text) {
  const std::string buf(text);
  int y, mo, d, h, mi, s, n = 0;
  if (std::sscanf(buf.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6)
    return std::nullopt;
  std::size_t i = static_cast<std::size_t>(n);
  if (i < buf.size() && buf[i] == '.') {  // a fraction, ignored: expiries need no better
    ++i;
    while (i < buf.size() && buf[i] >= '0' && buf[i] <= '9')
      ++i;
  }
  long offset = 0;
  if (i + 1 == buf.size() && (buf[i] == 'Z' || buf[i] == 'z')) {
    // UTC
  } else if (i + 6 == buf.size() && (buf[i] == '+' || buf[i] == '-') && buf[i + 3] == ':') {
    int oh, om;
    if (std::sscanf(buf.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2) return std::nullopt;
    offset = (buf[i] == '+' ? 1 : -1) * (oh * 3600L + om * 60L);
  } else {
    return std::nullopt;
  }
  auto t = from_utc_fields(y, mo, d, h, mi, s);
  if (!t) return std::nullopt;
  return *t - std::chrono::seconds(offset);
}

namespace {

// Stored JSON texts come from plugins through the host's JSON check; a row
// edited by hand must still not take a response down.
nlohmann::json parse_or_text(const std::string &text) {
  if (text.empty()) return nlohmann::json::object();
  auto j = parse_bounded_json(text);
  return j.problem == JsonProblem::None ? std::move(j.value) : nlohmann::json(text);
}

}  // namespace

// Plain ASCII (uids, names, times, most flags) is copied without building
// a JSON value; anything else goes through nlohmann's own writer.
void append_json_string(std::string &out, std::string_view text) {
  for (unsigned char c : text) {
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') {
      out += nlohmann::json(std::string(text))
                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return;
    }
  }
  out += '"';
  out += text;
  out += '"';
}

namespace {

void append_time_or_null(std::string &out, const std::optional<SystemTime> &t) {
  if (!t) {
    out += "null";
    return;
  }
  out += '"';
  out += format_time(*t);
  out += '"';
}

// A stored JSON text as parse_or_text reads it, re-written in one line.
void append_stored_json(std::string &out, const std::string &text) {
  if (text.empty() || text == "{}") {
    out += "{}";
    return;
  }
  out += parse_or_text(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void append_json_object(std::string &out, const FlagValues &flags) {
  out += '{';
  bool first = true;
  for (const auto &[name, value] : flags) {
    if (!first) out += ',';
    first = false;
    append_json_string(out, name);
    out += ':';
    append_json_string(out, value);
  }
  out += '}';
}

// Written field by field (the keys in nlohmann's order, sorted), without
// building a JSON value: this text is the response, the event and the
// callback body of every state change.
std::string to_json_text(const Experiment &e) {
  std::string out;
  out.reserve(512 + e.result_json.size() + e.destroy_result_json.size());
  out += "{\"action\":";
  append_json_string(out, e.action);
  out += ",\"callback\":";
  append_json_string(out, e.callback);
  out += ",\"created_at\":\"";
  out += format_time(e.created_at);
  out += "\",\"deadline\":";
  append_time_or_null(out, e.deadline);
  // Only when set, so an experiment that never needed it reads as before.
  if (!e.destroy_result_json.empty()) {
    out += ",\"destroy_result\":";
    append_stored_json(out, e.destroy_result_json);
  }
  out += ",\"error\":";
  append_json_string(out, e.error);
  out += ",\"executor\":";
  append_json_string(out, e.executor);
  out += ",\"finished_at\":";
  append_time_or_null(out, e.finished_at);
  out += ",\"flags\":";
  append_json_object(out, e.flags);
  if (e.quarantined) out += ",\"quarantined\":true";
  out += ",\"result\":";
  append_stored_json(out, e.result_json);
  out += ",\"scope\":";
  append_json_string(out, e.scope);
  out += ",\"started_at\":";
  append_time_or_null(out, e.started_at);
  out += ",\"status\":\"";
  out += to_string(e.status);
  out += "\",\"target\":";
  append_json_string(out, e.target);
  out += ",\"timeout\":";
  out += e.timeout_s ? std::to_string(*e.timeout_s) : std::string("null");
  out += ",\"uid\":";
  append_json_string(out, e.uid);
  out += ",\"updated_at\":\"";
  out += format_time(e.updated_at);
  out += "\"}";
  return out;
}

nlohmann::json to_json(const Experiment &e) {
  return nlohmann::json::parse(to_json_text(e));
}

nlohmann::json to_json(const Preparation &p) {
  return {{"uid", p.uid},
          {"type", p.type},
          {"flags", p.flags},
          {"status", to_string(p.status)},
          {"error", p.error},
          {"executor", p.executor},
          {"result", parse_or_text(p.result_json)},
          {"created_at", format_time(p.created_at)},
          {"updated_at", format_time(p.updated_at)}};
}

namespace {

[[noreturn]] void bad_field(const std::string &field, const std::string &why) {
  throw Error(ErrorCode::InvalidArgument, fmt::format("{}: {}", field, why), {{field, why}});
}

std::string text_of(const nlohmann::json &j, const char *field) {
  if (!j.contains(field) || j[field].is_null()) return {};
  if (!j[field].is_string()) bad_field(field, "must be a string");
  return j[field].get<std::string>();
}

std::optional<SystemTime> time_of(const nlohmann::json &j, const char *field) {
  const std::string text = text_of(j, field);
  if (text.empty()) return std::nullopt;
  auto t = parse_time(text);
  if (!t) bad_field(field, "must be an RFC 3339 time");
  return t;
}

}  // namespace

Experiment experiment_from_json(const nlohmann::json &j) {
  if (!j.is_object()) bad_field("experiment", "must be a JSON object");
  Experiment e;
  e.uid = text_of(j, "uid");
  if (auto scope = text_of(j, "scope"); !scope.empty()) e.scope = scope;
  e.target = text_of(j, "target");
  e.action = text_of(j, "action");
  if (j.contains("flags") && !j["flags"].is_null()) e.flags = flags_from_json(j["flags"]);
  auto status = experiment_status_from_string(text_of(j, "status"));
  if (!status) bad_field("status", "unknown experiment status");
  e.status = *status;
  e.error = text_of(j, "error");
  e.executor = text_of(j, "executor");
  if (j.contains("result")) e.result_json = j["result"].dump();
  if (j.contains("timeout") && j["timeout"].is_number_integer())
    e.timeout_s = j["timeout"].get<std::int64_t>();
  e.deadline = time_of(j, "deadline");
  e.callback = text_of(j, "callback");
  e.created_at = time_of(j, "created_at").value_or(SystemTime{});
  e.started_at = time_of(j, "started_at");
  e.finished_at = time_of(j, "finished_at");
  e.updated_at = time_of(j, "updated_at").value_or(SystemTime{});
  if (j.contains("quarantined") && j["quarantined"].is_boolean())
    e.quarantined = j["quarantined"].get<bool>();
  if (j.contains("destroy_result") && !j["destroy_result"].is_null())
    e.destroy_result_json = j["destroy_result"].dump();
  return e;
}

namespace {

// xoshiro256** (Blackman and Vigna), one per thread, seeded once from the
// kernel's CSPRNG: a uid then costs no system call. Uids are handles, not
// secrets (every API call is authenticated), so they need to be unique and
// hard to guess in sequence, not cryptographically strong; 256 bits of
// state seeded from getrandom give that. bladed's children exec at once,
// so no copy of a thread's state lives on in a forked process.
class UidGenerator {
 public:
  UidGenerator() {
    std::size_t got = 0;
    auto *bytes = reinterpret_cast<unsigned char *>(state_.data());
    const std::size_t size = sizeof(state_);
    while (got < size) {
      ssize_t n = ::getrandom(bytes + got, size - got, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error("getrandom failed");
      }
      got += static_cast<std::size_t>(n);
    }
    if ((state_[0] | state_[1] | state_[2] | state_[3]) == 0) state_[0] = 1;  // never all zero
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> state_{};
};

}  // namespace

std::string new_uid() {
  thread_local UidGenerator generator;
  std::uint64_t value = generator.next();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string uid(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4)
    uid[static_cast<std::size_t>(i)] = kHex[value & 0xf];
  return uid;
}

}  // namespace blade
