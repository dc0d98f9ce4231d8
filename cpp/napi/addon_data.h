// What the addon keeps per JavaScript environment (the main thread and each worker).
#pragma once
#include <napi.h>

namespace joule::napi {

struct AddonData {
  Napi::FunctionReference error_factory;  // (code, message) => JouleError, set by lib/errors.ts
};

inline AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace joule::napi
