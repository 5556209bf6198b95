#include "output.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "blade/core/model/chaosblade_response.hpp"

namespace blade::cli {
namespace {

std::string one_line(std::string cell) {
  std::replace_if(
      cell.begin(), cell.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
  return cell;
}

std::string flags_text(const FlagValues &flags) {
  std::string out;
  for (const auto &[name, value] : flags)
    out += fmt::format("{}--{}={}", out.empty() ? "" : " ", name, value);
  return out;
}

}  // namespace

void Table::print(std::ostream &out, OutputMode mode) const {
  if (mode == OutputMode::Plain) {
    for (const auto &row : rows_) {
      for (std::size_t i = 0; i < row.size(); ++i)
        out << (i ? "\t" : "") << one_line(row[i]);
      out << "\n";
    }
    return;
  }
  std::vector<std::size_t> width(header_.size(), 0);
  for (std::size_t i = 0; i < header_.size(); ++i)
    width[i] = header_[i].size();
  for (const auto &row : rows_)
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], one_line(row[i]).size());
  auto line = [&](const std::vector<std::string> &cells) {
    std::string text;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const std::string cell = one_line(cells[i]);
      text += i + 1 < cells.size() ? fmt::format("{:<{}}  ", cell, width[i]) : cell;
    }
    while (!text.empty() && text.back() == ' ')
      text.pop_back();
    out << text << "\n";
  };
  line(header_);
  for (const auto &row : rows_)
    line(row);
}

void print_json(std::ostream &out, const nlohmann::json &value) {
  out << value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

void print_result(std::ostream &out, OutputMode mode, const nlohmann::json &data) {
  if (mode != OutputMode::Chaosblade) return print_json(out, data);
  // One line, as ChaosBlade printed it.
  out << to_json(chaosblade_ok(data)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
      << "\n";
}

std::string short_time(const std::optional<SystemTime> &t) {
  if (!t) return "";
  std::string text = format_time(*t);  // 2026-11-22T04:13:22.123Z
  text = text.substr(0, 19);
  std::replace(text.begin(), text.end(), 'T', ' ');
  return text;
}

namespace {

// "destroying (quarantined)": an operator must see at a glance that no
// automatic destroy will come.
std::string status_text(const Experiment &e) {
  std::string s(to_string(e.status));
  return e.quarantined ? s + " (quarantined)" : s;
}

}  // namespace

Table experiment_table(const std::vector<Experiment> &items) {
  Table table({"UID", "TARGET", "ACTION", "STATUS", "CREATED", "EXECUTOR", "FLAGS", "ERROR"});
  for (const auto &e : items) {
    table.add({e.uid, e.target, e.action, status_text(e), short_time(e.created_at), e.executor,
               flags_text(e.flags), e.error});
  }
  return table;
}

void print_experiment_detail(std::ostream &out, const Experiment &e) {
  auto row = [&](const char *key, const std::string &value) {
    if (!value.empty()) out << fmt::format("{:<10} {}\n", key, value);
  };
  row("uid:", e.uid);
  row("scope:", e.scope);
  row("target:", e.target);
  row("action:", e.action);
  row("flags:", flags_text(e.flags));
  row("status:", status_text(e));
  row("error:", e.error);
  row("executor:", e.executor);
  row("timeout:", e.timeout_s ? fmt::format("{}s", *e.timeout_s) : "");
  row("deadline:", short_time(e.deadline));
  row("callback:", e.callback);
  row("created:", short_time(e.created_at));
  row("started:", short_time(e.started_at));
  row("finished:", short_time(e.finished_at));
  if (e.result_json != "{}" && e.result_json != "null") row("result:", e.result_json);
  // What the destroy found and did (e.g. the fault was already gone).
  row("destroy:", e.destroy_result_json);
}

}  // namespace blade::cli
