// Bindings of the quant module (filled in by its milestone).
#include "napi/registry.h"

namespace joule::napi {

std::vector<Binding> quant_bindings() { return {}; }

}  // namespace joule::napi
