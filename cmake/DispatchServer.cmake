# dispatch_add_server(<name> <library>...)
#
# An executable <name> that serves every annotated function of the
# libraries, with no main() of the user's: each library must have its
# headers generated with dispatch_generate() (not CLIENT_ONLY). The
# executable's main() is dispatch::serve_from_env() (dispatch/host/serve.h):
# the libraries' services, the built-in routes (the Dispatch protocol's
# Run), CloudEvents for [[dispatch::event]] functions, and the configuration
# from the environment (PORT or DISPATCH_ENDPOINT_ADDR, DISPATCH_VERIFICATION_KEY,
# DISPATCH_LOG_LEVEL, DISPATCH_EVENT_SOURCE), until SIGTERM drains it. See
# docs/deploy.md.
#
# How main() finds the services: dispatch_generate() gives each header's
# server half a function returning its dispatch::Service under a name the
# build chooses (the target's DISPATCH_SERVICE_ENTRIES property), and the
# main() this writes calls those. The names are known once every
# dispatch_generate() of the build has run, so main() is written when the
# top-level CMakeLists.txt ends; a library generated in the same directory
# as the server must have its dispatch_generate() before this call.
include_guard(GLOBAL)

function(dispatch_add_server name)
  cmake_parse_arguments(PARSE_ARGV 1 DS "" "" "")
  set(libraries ${DS_UNPARSED_ARGUMENTS})
  if(NOT libraries)
    message(FATAL_ERROR "dispatch_add_server(${name}): names no library; "
                        "give the libraries whose annotated functions it serves")
  endif()
  foreach(lib IN LISTS libraries)
    if(NOT TARGET ${lib})
      message(FATAL_ERROR "dispatch_add_server(${name}): no target ${lib}; create it first "
                          "(add_library + dispatch_generate)")
    endif()
  endforeach()
  set(main ${CMAKE_CURRENT_BINARY_DIR}/${name}_main.cc)
  add_executable(${name} ${main})
  if(TARGET dispatch_host)
    set(host dispatch_host)
  else()
    set(host Dispatch::host)
  endif()
  target_link_libraries(${name} PRIVATE ${libraries} ${host})
  set_target_properties(${name} PROPERTIES DISPATCH_SERVER TRUE)
  cmake_language(EVAL CODE "cmake_language(DEFER DIRECTORY [==[${CMAKE_SOURCE_DIR}]==] CALL
    _dispatch_server_main [==[${name}]==] [==[${main}]==] [==[${libraries}]==]
    [==[${CMAKE_CURRENT_LIST_FILE}]==])")
endfunction()

# The deferred half of dispatch_add_server(): writes main() once every
# library's service entries are known.
function(_dispatch_server_main name main libraries caller)
  set(declarations "")
  set(services "")
  foreach(lib IN LISTS libraries)
    get_target_property(entries ${lib} DISPATCH_SERVICE_ENTRIES)
    if(NOT entries)
      message(FATAL_ERROR "dispatch_add_server(${name}) (in ${caller}): ${lib} has no server half to serve: "
        "generate its annotated headers with dispatch_generate(${lib} HEADERS ...) without CLIENT_ONLY "
        "(in the same directory, before dispatch_add_server())")
    endif()
    foreach(entry IN LISTS entries)
      string(APPEND declarations "const ::dispatch::Service& ${entry}();  // ${lib}\n")
      string(APPEND services "&${entry}(), ")
    endforeach()
  endforeach()
  string(REGEX REPLACE ", $" "" services "${services}")
  list(JOIN libraries ", " library_names)
  file(CONFIGURE OUTPUT ${main} CONTENT [==[
// @name@: serves every annotated function of @library_names@.
// Written by dispatch_add_server() (cmake/DispatchServer.cmake); do not edit.
#include "dispatch/host/serve.h"

@declarations@
int main() { return ::dispatch::serve_from_env("@name@", {@services@}); }
]==] @ONLY)
endfunction()
