// Matches each [[dispatch::function]] annotation to the declaration it
// precedes in the translation unit and adds the function to the model:
// names, linkage, parameters (with default arguments and views) and result,
// their types through TypeMapper. Whatever cannot be a dispatch function
// (members, templates, internal linkage, variadics, non-const references)
// gets a diagnostic at the annotation or the declaration. Not for finding
// the annotations (annotation_scanner.h) or mapping types (type_mapper.h).
// Private to the front end.
#pragma once

#include <clang-c/Index.h>

#include <vector>

#include "annotation_scanner.h"
#include "diagnostics.h"
#include "model.h"

namespace dispatch::gen {

// Walks the declarations of `main_file` in `tu` (namespace and class
// members, not function bodies) and attaches `annotations`, found in that
// file, in order. Fills model.functions, structs and enums (structs in
// discovery order; see order_structs()); appends every error to `errors`.
void walk_declarations(CXTranslationUnit tu, CXFile main_file, const std::vector<Annotation>& annotations,
                       Model& model, std::vector<Diagnostic>& errors);

}  // namespace dispatch::gen
