// wrk as the load generator of a benchmark: one run as a child process
// (never through a shell), and the figures read back from its report.
#pragma once

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "../tests/support/child_process.hpp"
#include "../tests/support/file_text.hpp"
#include "../tests/support/temp_dir.hpp"

namespace blade::bench {

struct WrkLoad {
  int threads = 2;
  int connections = 32;
  int seconds = 10;
  int timeout_seconds = 2;  // wrk's own: a request slower than this is a timeout error
};

struct WrkFigures {
  double requests_per_s = 0;
  long requests = 0;
  double p50_us = 0;
  double p99_us = 0;
  // Socket errors (connect, read, write, timeout) and answers that were not
  // 2xx or 3xx: a figure measured around errors is not the target's.
  long errors = 0;
};

namespace wrk_detail {

// A wrk duration ("448.00us", "1.33ms", "2.01s", "1.50m") in microseconds.
inline double to_us(double value, const std::string &unit) {
  if (unit == "us") return value;
  if (unit == "ms") return value * 1e3;
  if (unit == "s") return value * 1e6;
  if (unit == "m") return value * 60e6;
  if (unit == "h") return value * 3600e6;
  throw std::runtime_error("wrk: unknown time unit '" + unit + "'");
}

}  // namespace wrk_detail

// Reads the report of `wrk --latency`. The report is wrk's own text, so
// std::regex is fine here; it never sees request data.
inline WrkFigures parse_wrk_report(const std::string &text) {
  WrkFigures f;
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(R"(Requests/sec:\s+([0-9.]+))")))
    throw std::runtime_error("wrk: no Requests/sec in its report:\n" + text);
  f.requests_per_s = std::stod(m[1]);
  if (!std::regex_search(text, m, std::regex(R"((\d+) requests in )")))
    throw std::runtime_error("wrk: no request count in its report:\n" + text);
  f.requests = std::stol(m[1]);
  for (const auto &[label, out] : {std::pair{"50", &f.p50_us}, std::pair{"99", &f.p99_us}}) {
    const std::regex line(std::string(R"(\n\s+)") + label + R"(%\s+([0-9.]+)(us|ms|s|m|h)\b)");
    if (!std::regex_search(text, m, line))
      throw std::runtime_error(std::string("wrk: no ") + label +
                               "% latency line (was --latency given?):\n" + text);
    *out = wrk_detail::to_us(std::stod(m[1]), m[2]);
  }
  if (std::regex_search(
          text, m,
          std::regex(R"(Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+))")))
    f.errors += std::stol(m[1]) + std::stol(m[2]) + std::stol(m[3]) + std::stol(m[4]);
  if (std::regex_search(text, m, std::regex(R"(Non-2xx or 3xx responses: (\d+))")))
    f.errors += std::stol(m[1]);
  return f;
}

// Runs wrk against `url` and returns its figures; throws when wrk fails or
// its report cannot be read.
inline WrkFigures run_wrk(const std::filesystem::path &wrk, const std::string &url,
                          const WrkLoad &load) {
  test::TempDir dir("blade-bench-wrk");
  const auto report = dir / "report.txt";
  test::ChildProcess child(
      {wrk.string(), "-t", std::to_string(load.threads), "-c", std::to_string(load.connections),
       "-d", std::to_string(load.seconds) + "s", "--timeout",
       std::to_string(load.timeout_seconds) + "s", "--latency", url},
      {}, report.string());
  const auto code = child.exit_code(std::chrono::seconds(load.seconds + 60));
  if (!code) throw std::runtime_error("wrk did not finish: " + test::read_text(report));
  if (*code != 0)
    throw std::runtime_error("wrk exited with " + std::to_string(*code) + ": " +
                             test::read_text(report));
  return parse_wrk_report(test::read_text(report));
}

}  // namespace blade::bench
