#include "core/dynlib.h"

#include <dlfcn.h>

namespace joule {

std::string library_load_error(const std::string& soname) {
  void* handle = dlopen(soname.c_str(), RTLD_LAZY | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    return why ? why : "dlopen failed";
  }
  dlclose(handle);
  return "";
}

}  // namespace joule
