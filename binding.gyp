{
  "targets": [
    {
      "target_name": "strata_native",
      "sources": [
        "src/native/addon.cc",
        "src/native/convolution.cc",
        "src/native/batch-norm.cc",
        "src/native/pooling.cc",
        "src/native/dense.cc",
        "src/native/elementwise.cc",
        "src/native/fake-quant.cc",
        "src/native/int8-inference.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fopenmp", "-Wall", "-Wno-unused-parameter"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldnnl", "-lgomp"]
    }
  ]
}
