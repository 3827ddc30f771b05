# dispatch_generate(<target> HEADERS <header>... [PACKAGE <package>]
#                   [OUT_DIR <dir>] [CLIENT_ONLY])
#
# Runs dispatch-gen on each annotated header at build time and adds what it
# writes to <target>:
#   <OUT_DIR>/<dir>/<stem>.dispatch.h          client stubs, messages, codecs
#   <OUT_DIR>/<dir>/<stem>.dispatch.cc         added to <target>
#   <OUT_DIR>/<dir>/<stem>.dispatch.server.cc  added unless CLIENT_ONLY
#   <OUT_DIR>/<dir>/<stem>.proto               the contract for other languages
# where <dir>/<stem>.h is the header's path relative to the current source
# directory (also how generated code #includes it). OUT_DIR defaults to
# ${CMAKE_CURRENT_BINARY_DIR}/<target>_dispatch and becomes a PUBLIC include
# directory of <target>, which also links Dispatch::runtime PUBLIC and gets,
# as a PUBLIC compile option, what silences the compiler's warning about the
# unknown [[dispatch::function]] attribute.
#
# The generator sees the headers as the compiler does: the target's include
# directories (its own and those its link dependencies export, which only the
# $<TARGET_PROPERTY> generator expression sees, not get_target_property()),
# compile definitions and C++ standard. A depfile lists every header it read,
# so editing an included header re-runs it.
#
# The generated .proto files are listed in <target>'s DISPATCH_PROTO_FILES
# property. Needs DISPATCH_GEN_EXECUTABLE (the top-level CMakeLists.txt sets
# it in-tree; DispatchConfig.cmake after find_package(Dispatch)).
include_guard(GLOBAL)

cmake_policy(PUSH)
# DEPFILE paths relative to the build tree, as Ninja and Makefiles both need.
cmake_policy(SET CMP0116 NEW)

function(dispatch_generate target)
  cmake_parse_arguments(PARSE_ARGV 1 DG "CLIENT_ONLY" "PACKAGE;OUT_DIR" "HEADERS")
  if(DG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "dispatch_generate(${target}): unknown arguments: ${DG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT TARGET ${target})
    message(FATAL_ERROR "dispatch_generate(${target}): no such target; create it first "
                        "(add_library/add_executable)")
  endif()
  if(NOT DG_HEADERS)
    message(FATAL_ERROR "dispatch_generate(${target}): HEADERS names no header")
  endif()
  if(NOT DISPATCH_GEN_EXECUTABLE)
    message(FATAL_ERROR "dispatch_generate(${target}): DISPATCH_GEN_EXECUTABLE is not set; "
                        "use find_package(Dispatch CONFIG) or add Dispatch with add_subdirectory()")
  endif()
  if(NOT DG_OUT_DIR)
    set(DG_OUT_DIR ${CMAKE_CURRENT_BINARY_DIR}/${target}_dispatch)
  endif()
  get_filename_component(DG_OUT_DIR "${DG_OUT_DIR}" ABSOLUTE BASE_DIR ${CMAKE_CURRENT_BINARY_DIR})

  # The generator itself: rebuilt in-tree, a file after installation.
  set(gen_depends)
  if(TARGET dispatch-gen)
    list(APPEND gen_depends dispatch-gen)
  elseif(TARGET Dispatch::dispatch-gen)
    list(APPEND gen_depends Dispatch::dispatch-gen)
  endif()

  set(package_args)
  if(DG_PACKAGE)
    set(package_args --package ${DG_PACKAGE})
  endif()

  # What the compiler would see, as clang arguments.
  set(includes "$<TARGET_PROPERTY:${target},INCLUDE_DIRECTORIES>")
  set(defines "$<TARGET_PROPERTY:${target},COMPILE_DEFINITIONS>")
  # The standard CMake compiles the target with (CXX_STANDARD, which CMake
  # raises to a cxx_std_NN compile feature the target asks for); at least
  # C++17, what the generated code needs. clang 14 knows C++23 only as c++2b
  # and nothing later.
  set(standard "$<TARGET_PROPERTY:${target},CXX_STANDARD>")
  set(std23 "$<OR:$<STREQUAL:${standard},23>,$<STREQUAL:${standard},26>>")
  set(std20 "$<STREQUAL:${standard},20>")
  set(clang_args
    "$<$<BOOL:${includes}>:-I$<JOIN:${includes},$<SEMICOLON>-I>>"
    "$<$<BOOL:${defines}>:-D$<JOIN:${defines},$<SEMICOLON>-D>>"
    "$<IF:${std23},-std=c++2b,$<IF:${std20},-std=c++20,-std=c++17>>")

  foreach(header IN LISTS DG_HEADERS)
    get_filename_component(abs "${header}" ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    file(RELATIVE_PATH rel ${CMAKE_CURRENT_SOURCE_DIR} ${abs})
    if(rel MATCHES "^\\.\\./")
      # Outside the source directory: include it by file name.
      get_filename_component(rel "${abs}" NAME)
    endif()
    get_filename_component(rel_dir "${rel}" DIRECTORY)
    get_filename_component(stem "${rel}" NAME_WE)
    if(rel_dir)
      set(out ${DG_OUT_DIR}/${rel_dir})
    else()
      set(out ${DG_OUT_DIR})
    endif()
    set(h ${out}/${stem}.dispatch.h)
    set(cc ${out}/${stem}.dispatch.cc)
    set(server_cc ${out}/${stem}.dispatch.server.cc)
    set(proto ${out}/${stem}.proto)
    set(depfile ${out}/${stem}.dispatch.d)

    add_custom_command(
      OUTPUT ${h} ${cc} ${server_cc} ${proto}
      COMMAND ${DISPATCH_GEN_EXECUTABLE} --out-dir ${out} --include-name ${rel}
              ${package_args} --depfile ${depfile} ${abs} -- ${clang_args}
      DEPENDS ${abs} ${gen_depends}
      DEPFILE ${depfile}
      COMMENT "dispatch-gen ${rel}"
      COMMAND_EXPAND_LISTS
      VERBATIM)

    target_sources(${target} PRIVATE ${h} ${cc})
    if(NOT DG_CLIENT_ONLY)
      target_sources(${target} PRIVATE ${server_cc})
    endif()
    set_property(TARGET ${target} APPEND PROPERTY DISPATCH_PROTO_FILES ${proto})
  endforeach()

  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${DG_OUT_DIR}>)
  target_link_libraries(${target} PUBLIC Dispatch::runtime)
  # GCC 12+ can silence one attribute namespace; older GCC only all unknown
  # attributes; clang has its own flag.
  target_compile_options(${target} PUBLIC
    "$<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_GREATER_EQUAL:$<CXX_COMPILER_VERSION>,12>>:-Wno-attributes=dispatch::>"
    "$<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,12>>:-Wno-attributes>"
    "$<$<CXX_COMPILER_ID:Clang,AppleClang>:-Wno-unknown-attributes>")
endfunction()

cmake_policy(POP)
