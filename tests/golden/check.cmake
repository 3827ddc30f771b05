# One golden case: runs dispatch-gen on a header and compares every file it
# writes with the committed expected output (MODE=check), or replaces the
# expected output with it (MODE=update; see update.sh).
# -D GEN=<dispatch-gen> HEADER=<abs> INCLUDE_NAME=<name> EXPECTED=<dir>
#    OUT=<scratch dir> [PACKAGE=<p>] [CLANG_ARGS=<-I...>] MODE=check|update
# Headers are read as dispatch-gen reads them by default (C++20).
set(package_args)
if(PACKAGE)
  set(package_args --package ${PACKAGE})
endif()
set(clang_args)
if(CLANG_ARGS)
  set(clang_args -- ${CLANG_ARGS})
endif()
file(REMOVE_RECURSE ${OUT})
execute_process(
  COMMAND ${GEN} --out-dir ${OUT} --include-name ${INCLUDE_NAME} ${package_args} ${HEADER} ${clang_args}
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "dispatch-gen failed on ${HEADER}:\n${err}")
endif()
file(GLOB produced RELATIVE ${OUT} ${OUT}/*)
list(SORT produced)

if(MODE STREQUAL "update")
  file(REMOVE_RECURSE ${EXPECTED})
  file(MAKE_DIRECTORY ${EXPECTED})
  foreach(f IN LISTS produced)
    file(COPY ${OUT}/${f} DESTINATION ${EXPECTED})
  endforeach()
  message(STATUS "updated ${EXPECTED}: ${produced}")
  return()
endif()

file(GLOB expected RELATIVE ${EXPECTED} ${EXPECTED}/*)
list(SORT expected)
if(NOT produced STREQUAL expected)
  message(FATAL_ERROR "golden ${INCLUDE_NAME}: generated files [${produced}] but expected "
                      "[${expected}]; if intended, run tests/golden/update.sh <build-dir>")
endif()
set(failed)
foreach(f IN LISTS produced)
  file(READ ${OUT}/${f} got)
  file(READ ${EXPECTED}/${f} want)
  if(NOT got STREQUAL want)
    execute_process(COMMAND diff -u ${EXPECTED}/${f} ${OUT}/${f} OUTPUT_VARIABLE d)
    string(APPEND failed "--- ${f} differs:\n${d}\n")
  endif()
endforeach()
if(failed)
  message(FATAL_ERROR "golden ${INCLUDE_NAME}: output changed.\n${failed}"
                      "If the change is intended, run tests/golden/update.sh <build-dir> and "
                      "commit the new expected files.")
endif()
