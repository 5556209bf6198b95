// nfnetlink spoken directly, for what libnftables cannot do or must not be
// asked: the nf_tables messages are built here in one buffer and sent on
// a netfilter netlink socket of the plugin's own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace blade::network {

// Netlink messages (an nfnetlink batch, or one request), built in one
// buffer: each message's length and each nested attribute's length are
// filled in when it ends. Numbers in attributes are big-endian, as
// nf_tables reads them.
class NfnlMessages {
 public:
  // Starts a message with its nfgenmsg header; returns its sequence number.
  std::uint32_t begin_message(std::uint16_t type, std::uint16_t flags, std::uint8_t family,
                              std::uint16_t res_id);
  void end_message();
  void attr(std::uint16_t type, const void *data, std::size_t size);
  void attr_string(std::uint16_t type, const std::string &s);
  void attr_be32(std::uint16_t type, std::uint32_t v);
  void begin_nest(std::uint16_t type);
  void end_nest();
  const std::vector<char> &bytes() const { return buf_; }

 private:
  void put(const void *data, std::size_t size);

  std::vector<char> buf_;
  std::vector<std::size_t> nests_;
  std::size_t message_at_ = 0;
  std::uint32_t seq_ = 0;
};

// The nf_tables message type `msg` (NFT_MSG_*) as nfnetlink numbers it.
std::uint16_t nft_message_type(std::uint16_t msg);

// Sends `messages` on a new netfilter netlink socket and waits (5 s at
// most) for the ACK of message `seq`: 0, or the errno the kernel answered
// (for that message, or for the batch around it), or the socket's own.
int nfnl_exchange(const NfnlMessages &messages, std::uint32_t seq);

// Why this kernel cannot take nftables commands, or "" when it can: no
// nfnetlink (no netfilter netlink socket opens), or no nf_tables (nfnetlink
// does not know its subsystem). Asked before any libnftables context is
// made, because libnftables exit()s the whole process when it cannot open
// its socket.
std::string nftables_missing();

}  // namespace blade::network
