// [[deprecated]] functions and fields, as an API retires them: the
// generated code still serves and encodes them without a warning (the
// library is built with -Werror), while callers of the deprecated stub are
// warned (generated_deprecated_stub_warns).
#pragma once
#include <cstdint>
#include <string>

namespace accounts {

struct Account {
  std::string id;
  [[deprecated("use id")]] std::int64_t number;
  std::int64_t balance;
  [[deprecated]] std::string branch;  // not trivially destructible
};

[[dispatch::function]] [[deprecated("use open_v2")]] std::int64_t open(const Account& account);
[[dispatch::function]] std::int64_t open_v2(const Account& account);
// Copies and moves of an Account in generated code (by value both ways).
[[dispatch::function]] Account rename(Account account, std::string id);

}  // namespace accounts
