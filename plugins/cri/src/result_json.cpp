#include "result_json.hpp"

#include <nlohmann/json.hpp>

namespace blade::cri {

using nlohmann::json;

std::string container_result_json(const Container &c) {
  const json summary = {
      {"runtime", c.runtime}, {"id", c.id}, {"name", c.name}, {"init_pid", c.init_pid}};
  return json{{"container", summary}}.dump();
}

std::string merge_objects(const std::string &first, const std::string &second,
                          const std::string &key) {
  // ordered_json: the container first, as the caller put it.
  auto out = nlohmann::ordered_json::parse(first, nullptr, false);
  if (!out.is_object()) out = nlohmann::ordered_json::object();
  auto more = nlohmann::ordered_json::parse(second, nullptr, false);
  if (more.is_object()) {
    for (auto it = more.begin(); it != more.end(); ++it)
      if (!out.contains(it.key())) out[it.key()] = it.value();
  } else if (!more.is_discarded() && !more.is_null()) {
    out[key] = more;
  }
  return out.dump();
}

}  // namespace blade::cri
