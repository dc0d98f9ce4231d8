# CPU-only fallback build with node-gyp, for machines without cmake. Reads the same source
# list as CMakeLists.txt (cpp/sources.json).
{
  "targets": [
    {
      "target_name": "joule",
      "sources": [
        "<!@(node -p \"const s = require('./cpp/sources.json'); [...s.core, ...s.napi, ...s.cuda_stub, ...s.dist, ...s.dist_gloo_stub].join(' ')\")"
      ],
      "include_dirs": [
        "<!@(node -p \"require('node-addon-api').include\")",
        "cpp",
        "."
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "JOULE_VERSION=\"<!(node -p \"require('./package.json').version\")\"",
        "JOULE_BUILD_SYSTEM=\"node-gyp\""
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions"],
      "libraries": ["-lpthread", "-ldl"]
    }
  ]
}
