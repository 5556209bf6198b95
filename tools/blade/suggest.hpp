// "Did you mean ...?": the nearest known word to a mistyped one, by edit
// distance, for commands, targets, actions and flags.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace blade::cli {

// The candidate closest to `word` (Levenshtein, transpositions as one edit),
// if it is close enough to be what was meant: at most 2 edits, and fewer
// than half the word's length. The first of equals wins.
std::optional<std::string> closest(const std::string &word,
                                   const std::vector<std::string> &candidates);

// " (did you mean 'x'?)", or "" when nothing is close.
std::string did_you_mean(const std::string &word, const std::vector<std::string> &candidates,
                         const std::string &prefix = "");

}  // namespace blade::cli
