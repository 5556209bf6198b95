#include "blade/core/model/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace blade::log {
namespace {

std::atomic<Level> g_level{Level::Info};
std::atomic<Format> g_format{Format::Text};
std::mutex g_sink_mutex;
Sink g_sink;  // guarded by g_sink_mutex

std::string timestamp() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z",
                     fmt::gmtime(std::chrono::system_clock::to_time_t(now)),
                     static_cast<int>(ms.count()));
}

std::string render_json(Level level, std::string_view message,
                        std::initializer_list<Field> fields) {
  nlohmann::json line = {{"time", timestamp()}, {"level", to_string(level)}, {"msg", message}};
  for (const auto &[key, value] : fields)
    line[std::string(key)] = value;
  // Replacement keeps a log line from throwing on invalid UTF-8 in a path.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string render_text(Level level, std::string_view message,
                        std::initializer_list<Field> fields) {
  std::string line = fmt::format("{} {:<5} {}", timestamp(), to_string(level), message);
  for (const auto &[key, value] : fields) {
    bool quote = value.empty() || value.find_first_of(" \"=") != std::string::npos;
    line += quote ? fmt::format(" {}={:?}", key, value) : fmt::format(" {}={}", key, value);
  }
  return line;
}

}  // namespace

std::string_view to_string(Level level) {
  switch (level) {
    case Level::Debug:
      return "debug";
    case Level::Info:
      return "info";
    case Level::Warn:
      return "warn";
    case Level::Error:
      return "error";
  }
  return "info";
}

std::optional<Level> level_from_string(std::string_view name) {
  for (Level l : {Level::Debug, Level::Info, Level::Warn, Level::Error})
    if (to_string(l) == name) return l;
  return std::nullopt;
}

std::optional<Format> format_from_string(std::string_view name) {
  if (name == "text") return Format::Text;
  if (name == "json") return Format::Json;
  return std::nullopt;
}

void set_level(Level level) {
  g_level = level;
}
void set_format(Format format) {
  g_format = format;
}

void set_sink(Sink sink) {
  std::lock_guard lock(g_sink_mutex);
  g_sink = std::move(sink);
}

bool enabled(Level level) {
  return level >= g_level.load();
}

void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  std::string line = g_format == Format::Json ? render_json(level, message, fields)
                                              : render_text(level, message, fields);
  std::lock_guard lock(g_sink_mutex);
  if (g_sink) {
    g_sink(line);
  } else {
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
}

}  // namespace blade::log
