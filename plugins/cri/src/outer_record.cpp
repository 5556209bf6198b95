#include "outer_record.hpp"

#include <stdexcept>

#include <nlohmann/json.hpp>

namespace blade::cri {

using nlohmann::json;

std::string to_json(const OuterRecord &r) {
  const Container &c = r.container;
  json out = {
      {"container",
       {{"runtime", c.runtime},
        {"id", c.id},
        {"name", c.name},
        {"ns", c.ns},
        {"init_pid", c.init_pid},
        {"init_start", c.init_start}}},
      {"enter",
       {{"mnt", r.enter.mnt},
        {"pid", r.enter.pid_ns},
        {"net", r.enter.net},
        {"ipc", r.enter.ipc},
        {"uts", r.enter.uts},
        {"cgroup", r.enter.cgroup}}},
      {"helper", nullptr},
      {"inner", nullptr},
  };
  if (r.helper) out["helper"] = {{"pid", r.helper->pid}, {"start", r.helper->start}};
  if (r.inner) out["inner"] = json::parse(*r.inner);
  return out.dump();
}

namespace {

template <class T>
T field(const json &obj, const char *parent, const char *key) {
  const std::string name = std::string(parent) + "." + key;
  if (!obj.is_object() || !obj.contains(key))
    throw std::invalid_argument("cri restore record: " + name + " is missing");
  try {
    return obj.at(key).get<T>();
  } catch (const json::exception &) {
    throw std::invalid_argument("cri restore record: " + name + " has the wrong type");
  }
}

}  // namespace

OuterRecord outer_record_from_json(const std::string &text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception &e) {
    throw std::invalid_argument(std::string("cri restore record is not JSON: ") + e.what());
  }
  if (!j.is_object()) throw std::invalid_argument("cri restore record is not a JSON object");
  OuterRecord r;
  const json c = j.value("container", json());
  r.container.runtime = field<std::string>(c, "container", "runtime");
  r.container.id = field<std::string>(c, "container", "id");
  r.container.name = field<std::string>(c, "container", "name");
  r.container.ns = field<std::string>(c, "container", "ns");
  r.container.init_pid = field<int>(c, "container", "init_pid");
  r.container.init_start = field<std::uint64_t>(c, "container", "init_start");
  if (r.container.id.empty() || r.container.runtime.empty() || r.container.init_pid <= 0)
    throw std::invalid_argument("cri restore record: container names no runtime, id or init pid");
  const json e = j.value("enter", json());
  r.enter.pid = r.container.init_pid;
  r.enter.start = r.container.init_start;
  r.enter.mnt = field<bool>(e, "enter", "mnt");
  r.enter.pid_ns = field<bool>(e, "enter", "pid");
  r.enter.net = field<bool>(e, "enter", "net");
  r.enter.ipc = field<bool>(e, "enter", "ipc");
  r.enter.uts = field<bool>(e, "enter", "uts");
  r.enter.cgroup = field<bool>(e, "enter", "cgroup");
  if (j.contains("helper") && !j["helper"].is_null()) {
    r.helper = HelperRef{field<int>(j["helper"], "helper", "pid"),
                         field<std::uint64_t>(j["helper"], "helper", "start")};
  }
  if (j.contains("inner") && !j["inner"].is_null()) r.inner = j["inner"].dump();
  return r;
}

}  // namespace blade::cri
