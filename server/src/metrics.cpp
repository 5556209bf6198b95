// PLACEHOLDER (helper "events-metrics" replaces this file).
#include "metrics.hpp"

namespace blade::server {

struct Metrics::Impl {};

Metrics::Metrics(Store &, EventBus &) : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;
void Metrics::observe_request(std::string_view, std::string_view, int) {}
void Metrics::observe_create(std::chrono::duration<double>) {}
void Metrics::observe_destroy(std::chrono::duration<double>) {}
std::string Metrics::render() const {
  return {};
}

}  // namespace blade::server
