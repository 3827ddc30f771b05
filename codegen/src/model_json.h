// --dump-model: the model as JSON, for people debugging a header and for
// tests. Keys follow model.h's member names; output is deterministic. Not a
// format other tools should build on: it changes with model.h.
#pragma once

#include <string>
#include <vector>

#include "model.h"

namespace dispatch::gen {

std::string model_to_json(const Model& model);
// A JSON array of the models, one per header.
std::string models_to_json(const std::vector<Model>& models);

}  // namespace dispatch::gen
