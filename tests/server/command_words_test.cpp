// The word splitter and the ChaosBlade command parser of /chaosblade?cmd=,
// called directly: quoting, the metacharacters a shell would act on (kept
// as plain characters here), and the command grammar.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "blade/core/model/error.hpp"
#include "compat/blade_command.hpp"
#include "compat/chaosblade_response.hpp"
#include "compat/command_words.hpp"

using blade::chaosblade_code;
using blade::Error;
using blade::ErrorCode;
using blade::FlagSpec;
using blade::server::BladeCommand;
using blade::server::BladeVerb;
using blade::server::parse_blade_command;
using blade::server::split_command_words;
using Words = std::vector<std::string>;

namespace {

// The Error `fn` throws (FAILs if it throws none).
template <class Fn>
Error error_of(Fn fn) {
  try {
    fn();
  } catch (const Error &e) {
    return e;
  }
  FAIL("no blade::Error thrown");
  return Error(ErrorCode::Internal, "unreachable");
}

// cmarker touch as the C marker plugin declares it, plus a typed flag;
// anything else is not served, as the service answers it.
std::vector<FlagSpec> lookup(const std::string &scope, const std::string &target,
                             const std::string &action) {
  if (scope != "host" || target != "cmarker" || (action != "touch" && action != "t"))
    throw Error(ErrorCode::NotFound, "no executor serves " + target + " " + action,
                {{"action", "no plugin or external spec serves " + target + " " + action}});
  std::vector<FlagSpec> flags(3);
  flags[0].name = "path";
  flags[0].required = true;
  flags[1].name = "fail";
  flags[1].no_args = true;
  flags[2].name = "count";
  return flags;
}

BladeCommand parse(const std::string &line) {
  return parse_blade_command(split_command_words(line), lookup);
}

int code_of_line(const std::string &line) {
  return chaosblade_code(error_of([&] { parse(line); }));
}

}  // namespace

TEST_CASE("words split on blanks; quotes and backslashes join and protect") {
  CHECK(split_command_words("create cpu  fullload\t--cpu-percent 60") ==
        Words{"create", "cpu", "fullload", "--cpu-percent", "60"});
  CHECK(split_command_words("  ").empty());
  CHECK(split_command_words("") == Words{});
  CHECK(split_command_words("'a b' \"c d\"") == Words{"a b", "c d"});
  CHECK(split_command_words("a'b'\"c\"d") == Words{"abcd"});
  CHECK(split_command_words("--content=\"hello world\"") == Words{"--content=hello world"});
  // Single quotes keep everything, backslashes included.
  CHECK(split_command_words(R"('a\"b\\c')") == Words{R"(a\"b\\c)"});
  // Double quotes: \" \\ \$ \` stand for the character, others keep the backslash.
  CHECK(split_command_words(R"("say \"hi\" \\ \$x \`y\` \n")") == Words{R"(say "hi" \ $x `y` \n)"});
  // Outside quotes a backslash takes the next character as it is.
  CHECK(split_command_words(R"(a\ b \'c \\d \;)") == Words{"a b", "'c", R"(\d)", ";"});
}

TEST_CASE("empty quotes are empty words") {
  CHECK(split_command_words("''") == Words{""});
  CHECK(split_command_words("a \"\" b") == Words{"a", "", "b"});
  CHECK(split_command_words("--x '' --y") == Words{"--x", "", "--y"});
}

TEST_CASE("an unterminated quote or a trailing backslash is an error on cmd") {
  for (const std::string line : {"create 'cpu", "create \"cpu", "a \"b\\\"", "a\\"}) {
    CAPTURE(line);
    Error e = error_of([&] { split_command_words(line); });
    CHECK(e.code() == ErrorCode::InvalidArgument);
    REQUIRE(e.details().size() == 1);
    CHECK(e.details()[0].field == "cmd");
    CHECK(chaosblade_code(e) == 49000);
  }
  CHECK(std::string(error_of([] { split_command_words("x 'y"); }).what()) ==
        "cmd: unterminated ' quote at offset 2");
}

TEST_CASE("shell metacharacters are ordinary characters inside words") {
  CHECK(split_command_words("a;b c|d e&&f") == Words{"a;b", "c|d", "e&&f"});
  CHECK(split_command_words("$(touch /tmp/x)") == Words{"$(touch", "/tmp/x)"});
  CHECK(split_command_words("`touch /tmp/x`") == Words{"`touch", "/tmp/x`"});
  CHECK(split_command_words("a > b < c") == Words{"a", ">", "b", "<", "c"});
  CHECK(split_command_words("$HOME ~ * ?") == Words{"$HOME", "~", "*", "?"});
  CHECK(split_command_words("'$(id)' \"$(id)\"") == Words{"$(id)", "$(id)"});
  // A newline does not end a command: it stays in the word (and the parser refuses it).
  CHECK(split_command_words("a\nb") == Words{"a\nb"});
}

TEST_CASE("create: target, action, flags in each form, switches from the spec") {
  BladeCommand c = parse("blade create cmarker t --path /tmp/a --count=3 --fail --timeout 90s");
  CHECK(c.verb == BladeVerb::Create);
  CHECK(c.create.scope == "host");
  CHECK(c.create.target == "cmarker");
  CHECK(c.create.action == "t");
  CHECK(c.create.flags == blade::FlagValues{{"path", "/tmp/a"}, {"count", "3"}, {"fail", "true"}});
  CHECK(c.create.timeout == "90s");
  CHECK_FALSE(c.create.async);
  CHECK_FALSE(c.create.dry_run);

  BladeCommand d = parse(
      "create host cmarker touch --fail=false --path '/tmp/a b' --async "
      "--dry-run --endpoint http://127.0.0.1:1/hook");
  CHECK(d.create.flags == blade::FlagValues{{"path", "/tmp/a b"}, {"fail", "false"}});
  CHECK(d.create.async);
  CHECK(d.create.dry_run);
  CHECK(d.create.callback == "http://127.0.0.1:1/hook");
  // The "blade" prefix is optional, ChaosBlade's short sub-commands work.
  CHECK(parse("c cmarker touch --path /a").verb == BladeVerb::Create);
}

TEST_CASE("create: what the spec does not know, or a malformed line, is refused by name") {
  Error unknown = error_of([] { parse("create cmarker touch --path /a --nope 1"); });
  CHECK(std::string(unknown.what()) == "flags.nope: unknown flag --nope for cmarker touch");
  CHECK(chaosblade_code(unknown) == 46000);

  Error not_served = error_of([] { parse("create cpu fullload --cpu-percent 60"); });
  CHECK(not_served.code() == ErrorCode::NotFound);
  CHECK(chaosblade_code(not_served) == 44000);

  CHECK(std::string(error_of([] { parse("create cmarker touch --path"); }).what()) ==
        "cmd: flag --path needs a value");
  CHECK(std::string(error_of([] { parse("create cmarker touch --path --fail"); }).what()) ==
        "cmd: flag --path needs a value");
  // A switch never takes the next word: the stray word is named.
  CHECK(std::string(error_of([] { parse("create cmarker touch --fail yes --path /a"); }).what()) ==
        "cmd: unexpected word 'yes'");
  CHECK(std::string(error_of([] { parse("create cmarker touch --path /a --path /b"); }).what()) ==
        "cmd: flag --path given twice");
  CHECK(code_of_line("create cmarker") == 49000);
  CHECK(code_of_line("create a b c d") == 49000);
  CHECK(code_of_line("create cmarker touch -p /a") == 49000);
  CHECK(code_of_line("create cmarker touch --=x") == 49000);
  CHECK(code_of_line("create cmarker touch --path /a --async=maybe") == 47000);
}

TEST_CASE("what a shell would run is a stray word, never a command") {
  for (const std::string line :
       {"create cmarker touch --path /tmp/a; touch /tmp/b",
        "create cmarker touch --path /tmp/a | sh",
        "create cmarker touch --path /tmp/a && touch /tmp/b",
        "create cmarker touch --path $(touch /tmp/b)", "create cmarker touch --path `touch /tmp/b`",
        "create cmarker touch --path /tmp/a > /tmp/b", "status; touch /tmp/b"}) {
    CAPTURE(line);
    CHECK(code_of_line(line) == 49000);
  }
  // Joined to a word, the characters are the value's own; the spec judges it.
  CHECK(parse("create cmarker touch --path /tmp/a;touch").create.flags.at("path") ==
        "/tmp/a;touch");
}

TEST_CASE("a word with NUL or a control character is refused without being echoed") {
  for (const auto &word : {std::string("a\nb"), std::string("a\0b", 3), std::string("\x1b[2J"),
                           std::string("a\x7f")}) {
    Error e = error_of([&] { parse_blade_command({"status", word}, lookup); });
    CHECK(std::string(e.what()) == "cmd: word 2 contains NUL or a control character");
    CHECK(chaosblade_code(e) == 49000);
  }
}

TEST_CASE("destroy, revoke, prepare, version") {
  BladeCommand d = parse("destroy 0123456789abcdef");
  CHECK(d.verb == BladeVerb::Destroy);
  CHECK(d.uid == "0123456789abcdef");
  CHECK_FALSE(d.force);
  CHECK(parse("destroy 0123456789abcdef --force-remove").force);
  CHECK(code_of_line("destroy") == 49000);
  CHECK(code_of_line("destroy a b") == 49000);
  CHECK(code_of_line("destroy a --all") == 46000);

  BladeCommand r = parse("revoke 0123");
  CHECK(r.verb == BladeVerb::Revoke);
  CHECK(r.uid == "0123");
  CHECK(code_of_line("revoke 0123 --x 1") == 46000);

  // No spec for preparations: a flag followed by a value takes it.
  BladeCommand p = parse("prepare jvm --pid 1234 --debug --port=9999");
  CHECK(p.verb == BladeVerb::Prepare);
  CHECK(p.prepare.type == "jvm");
  CHECK(p.prepare.flags == blade::FlagValues{{"pid", "1234"}, {"debug", "true"}, {"port", "9999"}});

  CHECK(parse("version").verb == BladeVerb::Version);
  CHECK(code_of_line("version now") == 49000);
  CHECK(std::string(error_of([] { parse("rm -rf /"); }).what()) ==
        "cmd: unknown sub-command 'rm'; expected create, destroy, status, prepare, revoke or "
        "version");
  CHECK(code_of_line("") == 49000);
  CHECK(code_of_line("blade") == 49000);
}

TEST_CASE("status: one uid, or filters in either vocabulary") {
  CHECK(parse("status 0123").status.uid == "0123");
  CHECK(parse("status --uid 0123").status.uid == "0123");
  CHECK(parse("status --type create --uid=0123").status.uid == "0123");
  CHECK(parse("status --type prepare --uid 0123").status.preparations);
  CHECK(code_of_line("status 0123 --uid 0123") == 49000);
  CHECK(code_of_line("status --uid 0123 --target cpu") == 47000);

  auto q = parse(
               "status --type destroy --target cmarker --action touch --status Success "
               "--limit 5,20 --asc")
               .status;
  CHECK(q.uid.empty());
  CHECK_FALSE(q.preparations);
  CHECK(q.experiments.target == "cmarker");
  CHECK(q.experiments.action == "touch");
  CHECK(q.experiments.status == blade::ExperimentStatus::Running);
  CHECK(q.experiments.offset == 5);
  CHECK(q.experiments.limit == 20);
  CHECK(q.experiments.ascending);

  CHECK(parse("status --status Error").status.experiments.status ==
        blade::ExperimentStatus::Failed);
  CHECK(parse("status --status Created").status.experiments.status ==
        blade::ExperimentStatus::Created);
  CHECK(parse("status --status destroyed").status.experiments.status ==
        blade::ExperimentStatus::Destroyed);
  CHECK(parse("status --limit 7").status.experiments.limit == 7);

  auto prep = parse("status --type p --target jvm --status Revoked").status;
  CHECK(prep.preparations);
  CHECK(prep.preparation_filter.type == "jvm");
  CHECK(prep.preparation_filter.status == blade::PreparationStatus::Revoked);

  CHECK(code_of_line("status --type bogus") == 47000);
  CHECK(code_of_line("status --status Sleeping") == 47000);
  CHECK(code_of_line("status --limit ten") == 47000);
  CHECK(code_of_line("status --flag-filter x") == 46000);
  CHECK(code_of_line("status --type prepare --action delay") == 47000);
}

TEST_CASE("the error table maps core errors to ChaosBlade's codes") {
  using blade::chaosblade_failure;
  CHECK(chaosblade_code(Error(ErrorCode::InvalidArgument, "x", {{"flags.path", "required"}})) ==
        45000);
  CHECK(chaosblade_code(Error(ErrorCode::InvalidArgument, "x", {{"flags.p", "must be 1..9"}})) ==
        47000);
  CHECK(chaosblade_code(Error(ErrorCode::NotFound, "x", {{"uid", "not found"}})) == 67002);
  CHECK(chaosblade_code(Error(ErrorCode::NotFound, "x", {{"type", "none"}})) == 44000);
  CHECK(chaosblade_code(Error(ErrorCode::Unauthenticated, "x")) == 43000);
  CHECK(chaosblade_code(Error(ErrorCode::PermissionDenied, "x")) == 43000);
  CHECK(chaosblade_code(Error(ErrorCode::FailedPrecondition, "x")) == 63063);
  CHECK(chaosblade_code(Error(ErrorCode::Unavailable, "x")) == 67001);
  CHECK(chaosblade_code(Error(ErrorCode::Internal, "x")) == 54000);

  auto failure = to_json(chaosblade_failure(Error(ErrorCode::Unavailable, "store down")));
  CHECK(failure == nlohmann::json{{"code", 67001}, {"success", false}, {"error", "store down"}});
  auto ok = to_json(blade::chaosblade_ok(nullptr));
  CHECK(ok == nlohmann::json{{"code", 200}, {"success", true}});
  CHECK(to_json(blade::chaosblade_ok(nlohmann::json::array()))["result"] ==
        nlohmann::json::array());
}
