#include "result_json.hpp"

#include <string_view>

#include <nlohmann/json.hpp>

#include "helper_protocol.hpp"

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

namespace {

void rewrite_paths(nlohmann::ordered_json &j, std::string_view inner, const std::string &host) {
  if (j.is_string()) {
    const auto &text = j.get_ref<const std::string &>();
    const std::string_view v(text);
    if (v == inner || (v.starts_with(inner) && v.size() > inner.size() && v[inner.size()] == '/'))
      j = host + std::string(v.substr(inner.size()));
  } else if (j.is_structured()) {
    for (auto &child : j)
      rewrite_paths(child, inner, host);
  }
}

}  // namespace

std::string with_host_paths(const std::string &json_text, const std::string &host_state_dir) {
  auto j = nlohmann::ordered_json::parse(json_text, nullptr, false);
  if (j.is_discarded()) return json_text;
  rewrite_paths(j, kInnerStateDir, host_state_dir);
  return j.dump();
}

}  // namespace blade::cri
