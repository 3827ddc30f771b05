# dispatch_generate(<target> HEADERS <header>... [PACKAGE <package>]
#                   [OUT_DIR <dir>] [CLIENT_ONLY])
#
# Runs dispatch-gen on each annotated header at build time and adds what it
# writes to <target>:
#   <OUT_DIR>/<dir>/<stem>.dispatch.h          client stubs, messages, codecs
#   <OUT_DIR>/<dir>/<stem>.dispatch.cc         the stubs' calls; added to <target>
#   <OUT_DIR>/<dir>/<stem>.dispatch.codec.cc   the codecs; added to <target>
#   <OUT_DIR>/<dir>/<stem>.dispatch.server.cc  added unless CLIENT_ONLY
#   <OUT_DIR>/<dir>/<stem>.proto               the contract for other languages
# where "<dir>/<stem>.h" is how code compiled with <target>'s include
# directories #includes the header, which is also how generated code
# #includes it: the header's path below the deepest include directory that
# holds it (with include directories `include` and `include/wh`,
# include/wh/admin/audit.h is "admin/audit.h"). When no include directory
# holds it, its path below the current source directory; a header outside
# both is an error, since nothing could #include it. OUT_DIR defaults to
# ${CMAKE_CURRENT_BINARY_DIR}/<target>_dispatch and becomes a PUBLIC include
# directory of <target>, so "<dir>/<stem>.dispatch.h" is also how users
# include the generated header. <target> also links Dispatch::runtime PUBLIC
# and gets, as a PUBLIC compile option, what silences the compiler's warning
# about the unknown [[dispatch::function]] attribute.
#
# When the spelling is decided. add_custom_command() needs its OUTPUT paths
# at configure time, but a target's include directories are complete only at
# generate time ($<TARGET_PROPERTY:...,INCLUDE_DIRECTORIES> adds those its
# link dependencies export and evaluates generator expressions). So:
#   - the commands are added when the CMakeLists.txt that called
#     dispatch_generate() ends (cmake_language(DEFER)), so include
#     directories and links given after the call count;
#   - the spelling is worked out then from <target>'s INCLUDE_DIRECTORIES
#     and the INTERFACE_INCLUDE_DIRECTORIES of every target it links,
#     transitively: plain paths and $<BUILD_INTERFACE:...> are read,
#     $<INSTALL_INTERFACE:...> is not the build's, and any other generator
#     expression cannot be read before generate time;
#   - dispatch-gen gets that spelling (--include-name) with the complete -I
#     list and --check-include-name, and fails the build, naming the
#     directory, if the include directories spell the header otherwise (a
#     directory CMake could not read at configure time) or if an earlier one
#     holds another file by that name. Giving the target the directory as a
#     plain path fixes the first.
# The generated .proto files are listed in <target>'s DISPATCH_PROTO_FILES
# property, filled when the directory ends (read it after that, or with
# $<TARGET_PROPERTY:<target>,DISPATCH_PROTO_FILES>). Unless CLIENT_ONLY, each
# header's server half also defines its service under a global name made
# from the target's (dispatch-gen --service-entry), listed in the
# DISPATCH_SERVICE_ENTRIES property: how the main() dispatch_add_server()
# writes finds the services (cmake/DispatchServer.cmake).
#
# The generator sees the headers as the compiler does: the target's include
# directories (its own and those its link dependencies export), compile
# definitions and C++ standard. A depfile lists every header it read, so
# editing an included header re-runs it.
#
# Needs DISPATCH_GEN_EXECUTABLE (the top-level CMakeLists.txt sets it
# in-tree; DispatchConfig.cmake after find_package(Dispatch)).
include_guard(GLOBAL)
if(CMAKE_VERSION VERSION_LESS 3.19)
  message(FATAL_ERROR "dispatch_generate() needs CMake 3.19 or later (cmake_language(DEFER)); "
                      "this is ${CMAKE_VERSION}")
endif()

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
  set(headers)
  foreach(header IN LISTS DG_HEADERS)
    get_filename_component(abs "${header}" ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND headers "${abs}")
  endforeach()

  # Bracketed, so the deferred call gets this call's values, not the
  # variables' values when the directory ends.
  cmake_language(EVAL CODE "cmake_language(DEFER CALL _dispatch_generate_commands [==[${target}]==]
    [==[${headers}]==] [==[${DG_OUT_DIR}]==] [==[${DG_PACKAGE}]==] [==[${DG_CLIENT_ONLY}]==]
    [==[${CMAKE_CURRENT_LIST_FILE}]==])")

  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${DG_OUT_DIR}>)
  target_link_libraries(${target} PUBLIC Dispatch::runtime)
  # GCC 12+ can silence one attribute namespace; older GCC only all unknown
  # attributes; clang has its own flag.
  target_compile_options(${target} PUBLIC
    "$<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_GREATER_EQUAL:$<CXX_COMPILER_VERSION>,12>>:-Wno-attributes=dispatch::>"
    "$<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,12>>:-Wno-attributes>"
    "$<$<CXX_COMPILER_ID:Clang,AppleClang>:-Wno-unknown-attributes>")
endfunction()

# Reads one include-directories property value: plain paths (relative ones
# below <base>), $<BUILD_INTERFACE:...> and $<BUILD_LOCAL_INTERFACE:...> into
# <dirs_var>; entries only generate time can evaluate into <unread_var>.
# $<INSTALL_INTERFACE:...> is where an installed copy looks, not this build.
function(_dispatch_read_include_dirs value base dirs_var unread_var)
  set(dirs ${${dirs_var}})
  set(unread ${${unread_var}})
  foreach(entry IN LISTS value)
    if(entry MATCHES "^\\$<BUILD_(LOCAL_)?INTERFACE:([^$]*)>$")
      set(entry "${CMAKE_MATCH_2}")
    elseif(entry MATCHES "^\\$<INSTALL_INTERFACE:")
      continue()
    endif()
    if(entry MATCHES "\\$<")
      list(APPEND unread "${entry}")
    elseif(NOT entry STREQUAL "")
      get_filename_component(entry "${entry}" ABSOLUTE BASE_DIR "${base}")
      list(APPEND dirs "${entry}")
    endif()
  endforeach()
  set(${dirs_var} ${dirs} PARENT_SCOPE)
  set(${unread_var} ${unread} PARENT_SCOPE)
endfunction()

# The include directories of <target> that configure time can read: its own
# and those exported by every target it links, transitively.
function(_dispatch_visible_include_dirs target dirs_var unread_var)
  set(dirs)
  set(unread)
  get_target_property(source_dir ${target} SOURCE_DIR)
  get_target_property(own ${target} INCLUDE_DIRECTORIES)
  if(own)
    _dispatch_read_include_dirs("${own}" "${source_dir}" dirs unread)
  endif()
  get_target_property(queue ${target} LINK_LIBRARIES)
  if(NOT queue)
    set(queue "")
  endif()
  set(seen)
  while(NOT "${queue}" STREQUAL "")
    list(POP_FRONT queue lib)
    if(lib MATCHES "\\$<" AND NOT lib MATCHES "^\\$<LINK_ONLY:")
      list(APPEND unread "${lib} (linked)")
      continue()
    endif()
    if(NOT TARGET "${lib}" OR lib IN_LIST seen)
      continue()
    endif()
    list(APPEND seen "${lib}")
    get_target_property(lib_dir ${lib} SOURCE_DIR)
    get_target_property(exported ${lib} INTERFACE_INCLUDE_DIRECTORIES)
    if(exported)
      _dispatch_read_include_dirs("${exported}" "${lib_dir}" dirs unread)
    endif()
    get_target_property(more ${lib} INTERFACE_LINK_LIBRARIES)
    if(more)
      list(APPEND queue ${more})
    endif()
  endwhile()
  list(REMOVE_DUPLICATES dirs)
  set(${dirs_var} ${dirs} PARENT_SCOPE)
  set(${unread_var} ${unread} PARENT_SCOPE)
endfunction()

# <header> below the deepest of <dirs> that holds it, or "" when none does;
# symlinks resolved on both sides, as dispatch-gen compares them.
function(_dispatch_include_spelling header dirs out_var)
  file(REAL_PATH "${header}" header)
  set(best "")
  foreach(dir IN LISTS dirs)
    file(REAL_PATH "${dir}" dir)
    file(RELATIVE_PATH rel "${dir}" "${header}")
    if(rel STREQUAL "" OR rel MATCHES "^\\.\\./" OR IS_ABSOLUTE "${rel}")
      continue()
    endif()
    string(LENGTH "${rel}" len)
    string(LENGTH "${best}" best_len)
    if(best STREQUAL "" OR len LESS best_len)
      set(best "${rel}")
    endif()
  endforeach()
  set(${out_var} "${best}" PARENT_SCOPE)
endfunction()

# The deferred half of dispatch_generate(): one dispatch-gen command per
# header, named after its spelling (see the top of this file).
function(_dispatch_generate_commands target headers out_dir package client_only caller)
  # The generator itself: rebuilt in-tree, a file after installation.
  set(gen_depends)
  if(TARGET dispatch-gen)
    list(APPEND gen_depends dispatch-gen)
  elseif(TARGET Dispatch::dispatch-gen)
    list(APPEND gen_depends Dispatch::dispatch-gen)
  endif()

  set(package_args)
  if(package)
    set(package_args --package ${package})
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

  _dispatch_visible_include_dirs(${target} dirs unread)
  list(REMOVE_ITEM dirs "${out_dir}")  # holds only what is generated
  file(REAL_PATH "${CMAKE_CURRENT_SOURCE_DIR}" source_dir)
  set(spellings)
  string(MAKE_C_IDENTIFIER "${target}" entry_prefix)
  set(entry_index 0)
  foreach(abs IN LISTS headers)
    _dispatch_include_spelling("${abs}" "${dirs}" rel)
    if(rel STREQUAL "")
      _dispatch_include_spelling("${abs}" "${source_dir}" rel)
    endif()
    if(rel STREQUAL "")
      get_filename_component(abs_dir "${abs}" DIRECTORY)
      list(JOIN dirs "\n    " shown)
      if(NOT shown)
        set(shown "(none)")
      endif()
      set(not_read "")
      if(unread)
        list(JOIN unread "\n    " not_read)
        set(not_read "\nNot readable at configure time (generator expressions):\n    ${not_read}")
      endif()
      message(FATAL_ERROR "dispatch_generate(${target}) (in ${caller}): ${abs} is below none of "
        "${target}'s include directories and outside ${CMAKE_CURRENT_SOURCE_DIR}, so generated code "
        "has no way to #include it. Give ${target} the directory your own code's #include is "
        "relative to, e.g. target_include_directories(${target} PUBLIC ${abs_dir})."
        "\nInclude directories read:\n    ${shown}${not_read}")
    endif()
    if(rel IN_LIST spellings)
      message(FATAL_ERROR "dispatch_generate(${target}) (in ${caller}): two headers are both spelled "
        "\"${rel}\" and would generate the same files; generate them into different targets or OUT_DIRs")
    endif()
    list(APPEND spellings "${rel}")

    get_filename_component(rel_dir "${rel}" DIRECTORY)
    get_filename_component(stem "${rel}" NAME_WE)
    if(rel_dir)
      set(out ${out_dir}/${rel_dir})
    else()
      set(out ${out_dir})
    endif()
    set(h ${out}/${stem}.dispatch.h)
    set(cc ${out}/${stem}.dispatch.cc)
    set(codec_cc ${out}/${stem}.dispatch.codec.cc)
    set(server_cc ${out}/${stem}.dispatch.server.cc)
    set(proto ${out}/${stem}.proto)
    set(depfile ${out}/${stem}.dispatch.d)

    set(entry_args)
    if(NOT client_only)
      set(entry dispatch_service_${entry_prefix}_${entry_index})
      math(EXPR entry_index "${entry_index} + 1")
      set(entry_args --service-entry ${entry})
      set_property(TARGET ${target} APPEND PROPERTY DISPATCH_SERVICE_ENTRIES ${entry})
    endif()

    add_custom_command(
      OUTPUT ${h} ${cc} ${codec_cc} ${server_cc} ${proto}
      COMMAND ${DISPATCH_GEN_EXECUTABLE} --out-dir ${out} --include-name ${rel} --check-include-name
              ${package_args} ${entry_args} --depfile ${depfile} ${abs} -- ${clang_args}
      DEPENDS ${abs} ${gen_depends}
      DEPFILE ${depfile}
      COMMENT "dispatch-gen ${rel}"
      COMMAND_EXPAND_LISTS
      VERBATIM)

    target_sources(${target} PRIVATE ${h} ${cc} ${codec_cc})
    if(NOT client_only)
      target_sources(${target} PRIVATE ${server_cc})
    endif()
    set_property(TARGET ${target} APPEND PROPERTY DISPATCH_PROTO_FILES ${proto})
  endforeach()
endfunction()

cmake_policy(POP)
