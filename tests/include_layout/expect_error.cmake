# Configures a project that must fail, and checks the error says why.
# -D SOURCE=<project> -D BUILD=<scratch dir> -D GENERATOR=<cmake generator>
#    -D DISPATCH_GEN_CMAKE=<DispatchGen.cmake> -D EXPECT=<regex the error must match>
file(REMOVE_RECURSE ${BUILD})
execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${SOURCE} -B ${BUILD} -G ${GENERATOR} -DDISPATCH_GEN_CMAKE=${DISPATCH_GEN_CMAKE}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} configured; it should have failed with '${EXPECT}':\n${out}\n${err}")
endif()
# CMake wraps long messages; compare with the line breaks and indents folded.
string(REGEX REPLACE "[ \n]+" " " folded "${err}")
if(NOT folded MATCHES "${EXPECT}")
  message(FATAL_ERROR "${SOURCE} failed, but not with '${EXPECT}':\n${err}")
endif()
message(STATUS "failed as expected:\n${err}")
