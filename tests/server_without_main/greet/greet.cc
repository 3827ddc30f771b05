#include "greet/greet.h"

#include "dispatch/core/error.h"

namespace greet {

std::string hello(std::string name) {
  if (name.empty()) throw dispatch::Error(dispatch::Code::invalid_argument, "name is empty");
  return "hello, " + name;
}

}  // namespace greet
