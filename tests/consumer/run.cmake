# The consumer test: installs the build tree into a scratch prefix, then
# configures, builds and runs tests/consumer/project against it.
# -D BUILD_DIR=<Dispatch build> -D PROJECT=<consumer source> -D WORK=<scratch>
#    -D GENERATOR=<cmake generator> -D CXX=<compiler> [-D SANITIZE=<list>]
function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer: ${what} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "consumer: ${what}: ok\n${out}")
endfunction()

file(REMOVE_RECURSE ${WORK})
step("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK}/prefix)
# A sanitized Dispatch build installs a sanitized libdispatch.a, which links
# only into a program built with the same -fsanitize (scripts/reliability.sh
# asan runs the whole suite, this test included).
set(flags)
if(SANITIZE)
  set(flags -DCMAKE_CXX_FLAGS=-fsanitize=${SANITIZE})
endif()
step("configure" ${CMAKE_COMMAND} -S ${PROJECT} -B ${WORK}/build -G ${GENERATOR}
     -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${WORK}/prefix -DCMAKE_BUILD_TYPE=Release
     ${flags})
step("build" ${CMAKE_COMMAND} --build ${WORK}/build)
step("server" ${WORK}/build/server)
step("client_only" ${WORK}/build/client_only)
step("modern" ${WORK}/build/modern)
step("warehouse" ${WORK}/build/warehouse)
# The installed generator did the work, not the build tree's.
if(GENERATOR STREQUAL "Ninja")
  file(STRINGS ${WORK}/build/build.ninja uses_installed REGEX "${WORK}/prefix/bin/dispatch-gen")
  if(NOT uses_installed)
    message(FATAL_ERROR "consumer: the build did not run ${WORK}/prefix/bin/dispatch-gen")
  endif()
endif()
