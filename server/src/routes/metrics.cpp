#include "metrics.hpp"

#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "blade/core/model/experiment.hpp"
#include "build_info.hpp"

namespace blade::server {
namespace {

// Seconds; the create/destroy calls of fast plugins take milliseconds, the
// external executors (a process per call) up to the sync deadline.
constexpr std::array<double, 14> kBuckets = {.001, .005, .01, .025, .05, .1, .25,
                                             .5,   1,    2.5, 5,    10,  30, 60};

struct Histogram {
  std::array<std::uint64_t, kBuckets.size() + 1> counts{};  // not cumulative; last is +Inf
  double sum = 0;
  std::uint64_t count = 0;

  void observe(double v) {
    std::size_t i = 0;
    while (i < kBuckets.size() && v > kBuckets[i])
      ++i;
    ++counts[i];
    sum += v;
    ++count;
  }
};

struct RequestKey {
  std::string method;
  std::string route;
  int code = 0;
};

struct RequestKeyView {
  std::string_view method;
  std::string_view route;
  int code = 0;
};

// Lets the request path look a key up without building strings.
struct RequestKeyLess {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A &a, const B &b) const {
    return std::tuple<std::string_view, std::string_view, int>(a.method, a.route, a.code) <
           std::tuple<std::string_view, std::string_view, int>(b.method, b.route, b.code);
  }
};

// A label value as the exposition format wants it: \, " and newline escaped.
std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string number(double v) {
  return fmt::format("{}", v);
}

void header(std::string &out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void render_histogram(std::string &out, std::string_view name, std::string_view help,
                      const Histogram &h) {
  header(out, name, "histogram", help);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    cumulative += h.counts[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, number(kBuckets[i]), cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, h.count);
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, number(h.sum), name, h.count);
}

struct ProcessStats {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double open_fds = 0;
};

// From /proc/self/stat: utime and stime (fields 14, 15, clock ticks),
// vsize (23, bytes) and rss (24, pages). Fields are counted after the
// command name, which may itself hold spaces and parentheses.
std::optional<ProcessStats> process_stats() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 1));
  std::vector<std::string> f{std::istream_iterator<std::string>(fields), {}};
  // f[0] is field 3 (state).
  if (f.size() < 22) return std::nullopt;
  ProcessStats s;
  try {
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    s.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;
    s.virtual_bytes = std::stod(f[20]);
    s.resident_bytes = std::stod(f[21]) * static_cast<double>(::sysconf(_SC_PAGESIZE));
  } catch (const std::exception &) {
    return std::nullopt;
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    s.open_fds += 1;
  return s;
}

// Plugins' live counters: one family per counter name,
// blade_plugin_<name>_total{plugin, uid, <the series' labels>}, families in
// name order, lines in (plugin, uid, series) order.
void render_live_counters(std::string &out, const std::vector<LiveCounters::Entry> &entries) {
  std::map<std::string, std::string> families;  // counter name -> its lines
  for (const auto &entry : entries) {
    for (const auto &series : entry.series) {
      std::string labels = fmt::format("plugin=\"{}\",uid=\"{}\"", escape_label(entry.plugin),
                                       escape_label(entry.uid));
      for (const auto &[name, value] : series.labels)
        labels += fmt::format(",{}=\"{}\"", name, escape_label(value));
      for (const auto &[name, value] : series.counters)
        families[name] += fmt::format("blade_plugin_{}_total{{{}}} {}\n", name, labels, value);
    }
  }
  for (const auto &[name, lines] : families) {
    const std::string metric = "blade_plugin_" + name + "_total";
    header(out, metric, "counter",
           fmt::format("Live counter {} that plugins report for their running experiments.", name));
    out += lines;
  }
}

}  // namespace

struct Metrics::Impl {
  Store &store;
  const LiveCounters *counters = nullptr;
  mutable std::mutex mutex;
  std::map<RequestKey, std::uint64_t, RequestKeyLess> requests;
  std::map<std::string, std::uint64_t> executor_errors;
  Histogram create;
  Histogram destroy;
  // Last, so it goes first: no listener call runs on a half-destroyed Impl.
  EventBus::Subscription subscription;

  explicit Impl(Store &s) : store(s) {}
};

Metrics::Metrics(Store &store, EventBus &events, const LiveCounters *counters)
    : impl_(std::make_unique<Impl>(store)) {
  impl_->counters = counters;
  impl_->subscription = events.subscribe([impl = impl_.get()](const Event &e) {
    // The service names the executor on events reporting a failed call.
    if (e.failed_executor.empty()) return;
    std::lock_guard lock(impl->mutex);
    ++impl->executor_errors[e.failed_executor];
  });
}

Metrics::~Metrics() = default;

void Metrics::observe_request(std::string_view method, std::string_view route, int status) {
  const RequestKeyView key{method, route, status};
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->requests.find(key);
  if (it == impl_->requests.end())
    it = impl_->requests.emplace(RequestKey{std::string(method), std::string(route), status}, 0)
             .first;
  ++it->second;
}

void Metrics::observe_create(std::chrono::duration<double> latency) {
  std::lock_guard lock(impl_->mutex);
  impl_->create.observe(latency.count());
}

void Metrics::observe_destroy(std::chrono::duration<double> latency) {
  std::lock_guard lock(impl_->mutex);
  impl_->destroy.observe(latency.count());
}

std::string Metrics::render() const {
  // The store is read before the lock, so a slow store never holds up the
  // request path.
  constexpr std::array kStatuses = {ExperimentStatus::Created, ExperimentStatus::Running,
                                    ExperimentStatus::Destroying, ExperimentStatus::Destroyed,
                                    ExperimentStatus::Failed};
  // One query, one snapshot: the counts agree with each other.
  const auto counted = impl_->store.count_experiments_by_status();
  const std::int64_t quarantined = impl_->store.count_quarantined_experiments();
  const StoreStats store_stats = impl_->store.stats();
  std::array<std::int64_t, kStatuses.size()> by_status{};
  for (std::size_t i = 0; i < kStatuses.size(); ++i)
    if (auto it = counted.find(kStatuses[i]); it != counted.end()) by_status[i] = it->second;

  decltype(impl_->requests) requests;
  decltype(impl_->executor_errors) executor_errors;
  Histogram create, destroy;
  {
    std::lock_guard lock(impl_->mutex);
    requests = impl_->requests;
    executor_errors = impl_->executor_errors;
    create = impl_->create;
    destroy = impl_->destroy;
  }

  std::string out;
  header(out, "blade_build_info", "gauge", "The bladed version; the value is always 1.");
  out += fmt::format("blade_build_info{{version=\"{}\"}} 1\n", escape_label(BLADE_VERSION));

  header(out, "blade_experiments", "gauge", "Experiments in the store, by status.");
  std::int64_t active = 0;
  for (std::size_t i = 0; i < kStatuses.size(); ++i) {
    out += fmt::format("blade_experiments{{status=\"{}\"}} {}\n", to_string(kStatuses[i]),
                       by_status[i]);
    if (is_active(kStatuses[i])) active += by_status[i];
  }
  header(out, "blade_active_faults", "gauge",
         "Faults in place on this host (experiments running or destroying).");
  out += fmt::format("blade_active_faults {}\n", active);
  header(out, "blade_experiments_quarantined", "gauge",
         "Experiments left destroying with no automatic destroy calls, because bladed died "
         "inside their destroy; an operator must check the host and force them.");
  out += fmt::format("blade_experiments_quarantined {}\n", quarantined);
  header(out, "blade_store_transactions_total", "counter",
         "Write transactions the store committed since bladed started (an autocommit write "
         "is one).");
  out += fmt::format("blade_store_transactions_total {}\n", store_stats.transactions);
  header(out, "blade_store_statements_total", "counter",
         "SQL statements the store ran since bladed started, reads and writes, BEGIN and COMMIT "
         "included.");
  out += fmt::format("blade_store_statements_total {}\n", store_stats.statements);

  render_histogram(out, "blade_experiment_create_seconds",
                   "Wall time of synchronous experiment creates, as the client saw it.", create);
  render_histogram(out, "blade_experiment_destroy_seconds",
                   "Wall time of experiment destroys, as the client saw it.", destroy);

  header(out, "blade_executor_errors_total", "counter",
         "Executor calls that failed (a failed create or destroy), by executor.");
  for (const auto &[executor, n] : executor_errors)
    out += fmt::format("blade_executor_errors_total{{executor=\"{}\"}} {}\n",
                       escape_label(executor), n);

  header(out, "blade_http_requests_total", "counter",
         "HTTP requests answered, by method, route pattern and status code.");
  for (const auto &[key, n] : requests) {
    out += fmt::format("blade_http_requests_total{{method=\"{}\",route=\"{}\",code=\"{}\"}} {}\n",
                       escape_label(key.method), escape_label(key.route), key.code, n);
  }

  if (impl_->counters) render_live_counters(out, impl_->counters->snapshot());

  if (auto p = process_stats()) {
    header(out, "process_cpu_seconds_total", "counter", "User and system CPU time spent.");
    out += fmt::format("process_cpu_seconds_total {}\n", number(p->cpu_seconds));
    header(out, "process_resident_memory_bytes", "gauge", "Resident memory size.");
    out += fmt::format("process_resident_memory_bytes {}\n", number(p->resident_bytes));
    header(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size.");
    out += fmt::format("process_virtual_memory_bytes {}\n", number(p->virtual_bytes));
    header(out, "process_open_fds", "gauge", "Open file descriptors.");
    out += fmt::format("process_open_fds {}\n", number(p->open_fds));
  }
  return out;
}

}  // namespace blade::server
