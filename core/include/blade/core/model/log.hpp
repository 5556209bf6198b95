// Structured logging: one JSON object per line, or `time level msg k=v` text
// for a terminal. Thread-safe; the sink is swappable so tests can read logs.
#pragma once

#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace blade::log {

enum class Level { Debug, Info, Warn, Error };
enum class Format { Text, Json };

std::string_view to_string(Level level);
std::optional<Level> level_from_string(std::string_view name);
std::optional<Format> format_from_string(std::string_view name);

using Field = std::pair<std::string_view, std::string>;
using Sink = std::function<void(std::string_view line)>;

void set_level(Level level);
void set_format(Format format);
// Replaces where lines go (default: stderr). An empty sink restores stderr.
void set_sink(Sink sink);

bool enabled(Level level);
void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::Debug, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::Info, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::Warn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::Error, m, f);
}

}  // namespace blade::log
