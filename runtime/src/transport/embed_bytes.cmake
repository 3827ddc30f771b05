# cmake -DINPUT=<file> -DOUTPUT=<file.cc> -DNAME=<symbol> -DNAMESPACE=<ns> -DHEADER=<include> -P embed_bytes.cmake
# Writes a C++ source defining `const char NAME[]` (the file's bytes) and
# `const std::size_t NAME##Size`, so a build-time artifact (a protoc
# descriptor set) is compiled in rather than read at run time.
file(READ ${INPUT} hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
string(REGEX REPLACE "((('[^']*'),){16})" "\\1\n    " bytes "${bytes}")
file(WRITE ${OUTPUT}.tmp "// Generated from ${INPUT} by embed_bytes.cmake; do not edit.
#include \"${HEADER}\"

namespace ${NAMESPACE} {

const char ${NAME}[] = {
    ${bytes}};
const std::size_t ${NAME}Size = ${size};

}  // namespace ${NAMESPACE}
")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUTPUT}.tmp)
