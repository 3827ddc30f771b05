# Asserts where dispatch_generate() wrote a header's files and how they
# #include it and each other.
# -D OUT_DIR=<the target's dispatch output directory> -D NAME=<spelling, e.g. acme/x.h>
get_filename_component(dir "${NAME}" DIRECTORY)
get_filename_component(stem "${NAME}" NAME_WE)
set(h ${OUT_DIR}/${dir}/${stem}.dispatch.h)
set(cc ${OUT_DIR}/${dir}/${stem}.dispatch.cc)
foreach(f ${h} ${cc})
  if(NOT EXISTS ${f})
    message(FATAL_ERROR "${f} was not generated")
  endif()
endforeach()
file(STRINGS ${h} found REGEX "^#include \"[^\"]*${stem}\\.h\"$")
if(NOT found STREQUAL "#include \"${NAME}\"")
  message(FATAL_ERROR "${h} includes the annotated header as '${found}', expected '#include \"${NAME}\"'")
endif()
file(STRINGS ${cc} found REGEX "^#include \"[^\"]*${stem}\\.dispatch\\.h\"$")
if(NOT found STREQUAL "#include \"${dir}/${stem}.dispatch.h\"")
  message(FATAL_ERROR "${cc} includes the generated header as '${found}', expected "
                      "'#include \"${dir}/${stem}.dispatch.h\"'")
endif()
# Nothing under another spelling of the same header.
file(GLOB_RECURSE written RELATIVE ${OUT_DIR} ${OUT_DIR}/*)
foreach(f IN LISTS written)
  if(NOT f MATCHES "^${dir}/${stem}\\.")
    message(FATAL_ERROR "${OUT_DIR}/${f}: generated outside ${dir}/")
  endif()
endforeach()
