#include "dns_message.hpp"

#include <algorithm>

#include "dns_names.hpp"

namespace blade::network {
namespace {

constexpr std::size_t kHeader = 12;

std::uint16_t u16(std::string_view msg, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(msg[at]) << 8) |
                                    static_cast<unsigned char>(msg[at + 1]));
}

}  // namespace

std::optional<DnsQuestion> parse_query(std::string_view msg) {
  if (msg.size() < kHeader) return std::nullopt;
  if (static_cast<unsigned char>(msg[2]) & 0x80) return std::nullopt;  // QR: a response
  if (u16(msg, 4) < 1) return std::nullopt;                            // QDCOUNT
  std::string name;
  std::size_t at = kHeader;
  for (;;) {
    if (at >= msg.size()) return std::nullopt;
    const auto len = static_cast<unsigned char>(msg[at++]);
    if (len == 0) break;
    // 0xc0: a compression pointer, which no query's first name needs.
    if (len > 63 || at + len > msg.size()) return std::nullopt;
    if (!name.empty()) name += '.';
    name.append(msg.substr(at, len));
    at += len;
    if (name.size() > 253) return std::nullopt;
  }
  if (at + 4 > msg.size()) return std::nullopt;  // QTYPE, QCLASS
  return DnsQuestion{lower_name(name), at + 4};
}

std::string answer_with_rcode(std::string_view query, std::size_t question_end,
                              std::uint8_t rcode) {
  std::string out(query.substr(0, question_end == 0 ? kHeader : question_end));
  out.resize(std::max(out.size(), kHeader), '\0');
  out[2] = static_cast<char>((static_cast<unsigned char>(out[2]) & 0x79) | 0x80);  // QR, opcode, RD
  out[3] = static_cast<char>(0x80 | (rcode & 0x0f));                               // RA, RCODE
  out[4] = 0;
  out[5] = question_end == 0 ? 0 : 1;  // QDCOUNT
  for (std::size_t i = 6; i < kHeader; ++i)
    out[i] = 0;  // ANCOUNT, NSCOUNT, ARCOUNT
  return out;
}

int message_id(std::string_view msg) {
  return msg.size() < 2 ? -1 : u16(msg, 0);
}

}  // namespace blade::network
