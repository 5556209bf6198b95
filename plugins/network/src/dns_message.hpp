// The little of the DNS wire format (RFC 1035 section 4) the stub resolver
// of dns_down needs: the name a query asks for, and an answer that refuses
// it. Nothing else of a message is read; forwarded messages go on as they
// are.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace blade::network {

struct DnsQuestion {
  std::string name;              // lower case, no trailing dot ("" for the root)
  std::size_t question_end = 0;  // bytes of header and first question
};

// The first question of a query, or nullopt when `msg` is no well-formed
// query (too short, a response, no question, a compressed or overlong name).
std::optional<DnsQuestion> parse_query(std::string_view msg);

// DNS answer codes the stub sends.
inline constexpr std::uint8_t kFormErr = 1;
inline constexpr std::uint8_t kServFail = 2;

// The answer to `query` with `rcode` and no records: its header (id,
// opcode, RD kept; QR and RA set) and, when `question_end` is not 0, its
// first question, as resolvers check that the answer is to their question.
std::string answer_with_rcode(std::string_view query, std::size_t question_end, std::uint8_t rcode);

// The id of a message (its first two bytes), or -1 when it is shorter.
int message_id(std::string_view msg);

}  // namespace blade::network
