// Checks of the container flags' values, each throwing InvalidArgument
// named for its flag. An id or a namespace becomes a path component of a
// runtime's state dir, so neither may hold a '/' or be "." or "..".
#pragma once

#include <string>
#include <string_view>

namespace blade::cri {

// container-id: letters, digits and "_.+-", starting with a letter or digit.
void check_container_id(const std::string &id);

// container-namespace: containerd's rule, letters and digits separated by
// single '.', '_' or '-'; at most 76 characters.
void check_namespace(const std::string &ns);

// `path` without a unix:// prefix; InvalidArgument naming `flag` unless the
// rest is an absolute path.
std::string socket_path(const std::string &flag, const std::string &value);

// InvalidArgument naming container-runtime unless `runtime` is one a
// resolver serves (runc, containerd, cri-o, docker; crun and crio are
// spelled so by the time they get here).
void check_runtime(std::string_view runtime);

}  // namespace blade::cri
