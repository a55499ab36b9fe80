// The little JSON that comparison and export outputs need: strings and
// numbers written by hand, so that results/ needs no JSON library.
#pragma once

#include <string>

namespace fulcrum::results {

/// `text` as a JSON string literal, quotes included (UTF-8 passed through,
/// control characters escaped).
std::string jsonString(const std::string& text);

/// `value` as a JSON number (shortest form that reads back exactly), or
/// `null` when it is NaN or infinite (JSON has no such numbers).
std::string jsonNumber(double value);

}  // namespace fulcrum::results
