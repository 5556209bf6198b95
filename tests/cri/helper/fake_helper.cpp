// A stand-in for blade-cri-helper that misbehaves on purpose, so the
// session's answers to a broken helper are tested: what it does is named by
// the request's uid.
//   exit3    says something on stderr and exits 3 without an answer
//   sigkill  is killed by SIGKILL without an answer
//   garbage  sends a line that is not JSON, then waits
//   hang     answers done, then ignores the socket's end and sleeps
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>

int main() {
  std::string line;
  char c;
  while (::read(3, &c, 1) == 1 && c != '\n')
    line += c;
  auto has = [&](const char *uid) {
    return line.find(std::string("\"uid\":\"") + uid + "\"") != std::string::npos;
  };
  auto say = [](const std::string &text) {
    if (::write(3, text.data(), text.size()) != static_cast<ssize_t>(text.size())) ::_exit(9);
  };
  if (has("exit3")) {
    std::fputs("oops from the fake helper\n", stderr);
    return 3;
  }
  if (has("sigkill")) ::raise(SIGKILL);
  if (has("garbage")) say("not json\n");
  if (has("hang")) {
    say("{\"type\":\"done\",\"status\":0,\"error\":\"\",\"result\":{},\"restore\":{},\"plan\":null}\n");
    ::signal(SIGTERM, SIG_IGN);
  }
  for (;;)
    ::pause();
}
