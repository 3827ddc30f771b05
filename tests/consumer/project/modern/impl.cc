// The consumer's implementation of modern/api.h.
#include "modern/api.h"

namespace modern {
Version newer(const Version& a, const Version& b) { return a < b ? b : a; }
}  // namespace modern
