// Built instead of gloo_group.cpp when the Gloo library was not found at build time.
#include "core/error.h"
#include "dist/process_group.h"

namespace joule::dist {

bool gloo_compiled() { return false; }

std::string gloo_unavailable_reason() {
  return "the gloo backend was not compiled into this addon (the Gloo library was not found at build time): "
         "install it with `apt-get install libgloo-dev` and rebuild (npm run build:native)";
}

std::unique_ptr<ProcessGroup> make_gloo_group(StoreClient&, const std::string&, int, int, Millis, const std::string&) {
  fail(Code::BackendUnavailable, "dist: ", gloo_unavailable_reason());
}

}  // namespace joule::dist
