// An annotated header reached through two include directories, lib and
// lib/api: code includes it as "acme/x.h", the deeper directory's spelling.
#pragma once
#include <cstdint>
#include <string>

namespace acme {
struct Label { std::string text; int32_t copies; };

[[dispatch::function]] Label stamp(const std::string& text, int32_t copies);
}
