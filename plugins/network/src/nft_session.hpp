// One libnftables context (nft_ctx) with its output and error captured, so
// the drop fault talks to nf_tables in-process: no `nft` binary, no shell.
// The command text it is given is built by the plugin from values it has
// parsed and checked itself (drop_rules.hpp); nothing else reaches it.
#pragma once

#include <memory>
#include <string>

struct nft_ctx;

namespace blade::network {

struct NftAnswer {
  bool ok = false;
  std::string output;  // what a list command printed
  // nft's message when !ok, condensed: its first error, the command it
  // points at, and how many more it gave (one failed command in a
  // transaction makes libnftables report every later one too).
  std::string error;
};

class NftSession {
 public:
  // `check_only`: commands are sent to the kernel as a transaction that is
  // checked and then aborted (libnftables' dry run), so nothing changes.
  // Throws sdk::FailedPrecondition when no context can be made, naming what
  // the kernel lacks (nft_netlink.hpp's nftables_missing) when that is why.
  explicit NftSession(bool check_only = false);

  // Runs `commands` (one transaction: all of it or nothing).
  NftAnswer run(const std::string &commands);

  // Whether `table` exists in `family`; false too when the listing itself
  // fails, which `answer` (when given) tells apart.
  bool table_exists(const std::string &family, const std::string &table,
                    NftAnswer *answer = nullptr);

 private:
  struct Free {
    void operator()(nft_ctx *ctx) const;
  };
  std::unique_ptr<nft_ctx, Free> ctx_;
};

// True when nft's error says the kernel lacks what the ruleset needs
// (nf_tables itself, the inet family or an expression's module).
bool nft_kernel_lacks_support(const std::string &error);

}  // namespace blade::network
