// Bindings of the dist module (filled in by its milestone).
#include "napi/registry.h"

namespace joule::napi {

std::vector<Binding> dist_bindings() { return {}; }

}  // namespace joule::napi
