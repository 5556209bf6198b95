// Checks of the container flags' values, each throwing InvalidArgument
// named for its flag. An id or a namespace becomes a path component of a
// runtime's state dir, so neither may hold a '/' or be "." or "..".
#pragma once

#include <string>

namespace blade::cri {

// container-id: letters, digits and "_.+-", starting with a letter or digit.
void check_container_id(const std::string &id);

// container-namespace: containerd's rule, letters and digits separated by
// single '.', '_' or '-'; at most 76 characters.
void check_namespace(const std::string &ns);

// `path` without a unix:// prefix; InvalidArgument naming `flag` unless the
// rest is an absolute path.
std::string socket_path(const std::string &flag, const std::string &value);

// The directory a path lies in ("/run/containerd" of
// "/run/containerd/containerd.sock").
std::string parent_dir(const std::string &path);

}  // namespace blade::cri
