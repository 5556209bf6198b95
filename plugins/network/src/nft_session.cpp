#include "nft_session.hpp"

#include <nftables/libnftables.h>

#include <sstream>

#include <blade/plugin.hpp>

#include "nft_netlink.hpp"

namespace blade::network {

void NftSession::Free::operator()(nft_ctx *ctx) const {
  nft_ctx_free(ctx);
}

namespace {

// "Error: X\n<command>\n<carets>\nError: Y ..." as "Error: X (in: <command>)"
// and a count of the rest.
std::string condensed(const std::string &text) {
  std::istringstream lines(text);
  std::string line, first, command;
  int more = 0;
  while (std::getline(lines, line)) {
    if (line.find("Error:") != std::string::npos) {
      if (first.empty()) {
        first = line;
      } else {
        ++more;
      }
    } else if (!first.empty() && command.empty() &&
               line.find_first_not_of(" ^~") != std::string::npos) {
      command = line;
    }
  }
  if (first.empty()) return text;
  if (!command.empty()) first += " (in: " + command + ")";
  if (more > 0) first += "; and " + std::to_string(more) + " more error(s) after it";
  return first;
}

// The context, once the kernel is known to answer nftables (see
// nftables_missing).
nft_ctx *new_context() {
  if (const std::string missing = nftables_missing(); !missing.empty())
    throw sdk::FailedPrecondition(missing);
  return nft_ctx_new(NFT_CTX_DEFAULT);
}

}  // namespace

NftSession::NftSession(bool check_only) : ctx_(new_context()) {
  if (!ctx_) throw sdk::FailedPrecondition("cannot create a libnftables context");
  // Buffered, so messages come back to the caller instead of the daemon's
  // stdout/stderr.
  if (nft_ctx_buffer_output(ctx_.get()) != 0 || nft_ctx_buffer_error(ctx_.get()) != 0)
    throw sdk::FailedPrecondition("cannot capture libnftables' output");
  nft_ctx_set_dry_run(ctx_.get(), check_only);
}

NftAnswer NftSession::run(const std::string &commands) {
  NftAnswer a;
  a.ok = nft_run_cmd_from_buffer(ctx_.get(), commands.c_str()) == 0;
  if (const char *out = nft_ctx_get_output_buffer(ctx_.get())) a.output = out;
  if (const char *err = nft_ctx_get_error_buffer(ctx_.get())) a.error = condensed(err);
  if (!a.ok && a.error.empty()) a.error = "libnftables failed without a message";
  return a;
}

bool NftSession::table_exists(const std::string &family, const std::string &table,
                              NftAnswer *answer) {
  NftAnswer a = run("list tables " + family + "\n");
  bool found = false;
  if (a.ok) {
    // One "table <family> <name>" a line.
    std::istringstream lines(a.output);
    std::string word, fam, name;
    while (lines >> word >> fam >> name)
      if (word == "table" && fam == family && name == table) found = true;
  }
  if (answer) *answer = std::move(a);
  return found;
}

bool nft_kernel_lacks_support(const std::string &error) {
  // EOPNOTSUPP / EPROTONOSUPPORT / EAFNOSUPPORT from nfnetlink: no
  // nf_tables subsystem, no such family, or an expression whose module is
  // missing.
  return error.find("not supported") != std::string::npos;
}

}  // namespace blade::network
