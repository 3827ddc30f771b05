// The function of acme/x.h, included as a user of lib/api would.
#include "acme/x.h"

namespace acme {
Label stamp(const std::string& text, int32_t copies) { return Label{"[" + text + "]", copies * 2}; }
}
