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
#
#
# dispatch_add_image(<name> SERVER <server> [TAG <tag>] [PORT <port>]
#                    [EXCLUDE_FROM_ALL])
#
# A target <name> that builds an OCI image of <server> (a dispatch_add_server()
# executable) without a container engine and without a base image, with
# umoci and skopeo (cmake/dispatch-image.sh says what goes in): the
# executable, the shared libraries it loads, CA certificates; entrypoint the
# server, PORT=<port> (default 8080, the port Knative and OpenFaaS use),
# user 65534. Output in ${CMAKE_CURRENT_BINARY_DIR}/<name>/: `oci/` (an OCI
# image layout, tag <tag>, default latest) and `image.tar` (docker-archive
# for `docker load` / `podman load`, named <server file name>:<tag>). The target's
# DISPATCH_IMAGE_LAYOUT and DISPATCH_IMAGE_ARCHIVE properties hold those
# paths. Built with `all` unless EXCLUDE_FROM_ALL.
include_guard(GLOBAL)

set(_DISPATCH_IMAGE_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/dispatch-image.sh)

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

function(dispatch_add_image name)
  cmake_parse_arguments(PARSE_ARGV 1 DI "EXCLUDE_FROM_ALL" "SERVER;TAG;PORT" "")
  if(DI_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "dispatch_add_image(${name}): unknown arguments: ${DI_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT DI_SERVER)
    message(FATAL_ERROR "dispatch_add_image(${name}): SERVER names no target; "
                        "give the dispatch_add_server() executable the image runs")
  endif()
  if(NOT TARGET ${DI_SERVER})
    message(FATAL_ERROR "dispatch_add_image(${name}): no target ${DI_SERVER}")
  endif()
  get_target_property(is_server ${DI_SERVER} DISPATCH_SERVER)
  if(NOT is_server)
    message(FATAL_ERROR "dispatch_add_image(${name}): ${DI_SERVER} is not a server made with "
      "dispatch_add_server(); an image runs a server configured by its environment (PORT), "
      "which a program with its own main() may not be")
  endif()
  if(NOT DI_TAG)
    set(DI_TAG latest)
  endif()
  if(NOT DI_PORT)
    set(DI_PORT 8080)
  endif()
  if(NOT DI_PORT MATCHES "^[0-9]+$" OR DI_PORT GREATER 65535 OR DI_PORT EQUAL 0)
    message(FATAL_ERROR "dispatch_add_image(${name}): PORT ${DI_PORT} is not a port number (1-65535)")
  endif()
  find_program(DISPATCH_UMOCI umoci)
  find_program(DISPATCH_SKOPEO skopeo)
  if(NOT DISPATCH_UMOCI OR NOT DISPATCH_SKOPEO)
    message(FATAL_ERROR "dispatch_add_image(${name}): needs umoci and skopeo to build an image without a "
                        "container engine; install them (apt-get install umoci skopeo)")
  endif()
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${name})
  set(archive ${out}/image.tar)
  add_custom_command(
    OUTPUT ${out}/oci/index.json
    COMMAND bash ${_DISPATCH_IMAGE_SCRIPT} $<TARGET_FILE:${DI_SERVER}> $<TARGET_FILE_NAME:${DI_SERVER}>
            ${DI_TAG} ${DI_PORT} ${out} ${archive}
    DEPENDS ${DI_SERVER} ${_DISPATCH_IMAGE_SCRIPT}
    COMMENT "OCI image ${name} of ${DI_SERVER}"
    VERBATIM)
  set(all ALL)
  if(DI_EXCLUDE_FROM_ALL)
    set(all "")
  endif()
  add_custom_target(${name} ${all} DEPENDS ${out}/oci/index.json)
  set_target_properties(${name} PROPERTIES DISPATCH_IMAGE_LAYOUT ${out}/oci DISPATCH_IMAGE_TAG ${DI_TAG}
                                           DISPATCH_IMAGE_ARCHIVE ${archive})
endfunction()
