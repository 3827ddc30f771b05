// Compiled by generated_deprecated_stub_warns, which expects the warning:
// a deprecated function's stub is deprecated with the function's message.
#include "deprecated/api.dispatch.h"

std::int64_t call(dispatch::Client& client) { return accounts::remote::open(client, accounts::Account{}); }
