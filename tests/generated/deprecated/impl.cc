// The functions of deprecated/api.h. This file is the API's own code, which
// still uses what it deprecated (GCC and clang warn at the struct for its
// implicit copies, so the pragma comes before the include).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include "deprecated/api.h"

#include <utility>

namespace accounts {

std::int64_t open(const Account& account) { return account.number; }
std::int64_t open_v2(const Account& account) { return account.balance; }
Account rename(Account account, std::string id) {
  account.id = std::move(id);
  return account;
}

}  // namespace accounts
#pragma GCC diagnostic pop
