// Printing results: aligned tables for people, tab-separated lines for
// scripts (`plain`, the default when stdout is not a terminal), and the
// API's JSON for `--output json`.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "blade/core/model/experiment.hpp"
#include "settings.hpp"

namespace blade::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.empty(); }
  // Table: header and columns padded to their widest cell. Plain: rows only,
  // cells joined by tabs (tabs and newlines inside a cell become spaces).
  void print(std::ostream &out, OutputMode mode) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

void print_json(std::ostream &out, const nlohmann::json &value);
// `data` as json mode prints it, or for chaosblade mode inside ChaosBlade's
// success Response (`result`).
void print_result(std::ostream &out, OutputMode mode, const nlohmann::json &data);

// "2026-11-22 04:13:22" (UTC) for a table cell; "" for none.
std::string short_time(const std::optional<SystemTime> &t);

// The experiments of a list answer as rows; and one as "key: value" lines.
Table experiment_table(const std::vector<Experiment> &items);
void print_experiment_detail(std::ostream &out, const Experiment &e);

}  // namespace blade::cli
