{
  "targets": [
    {
      "target_name": "fedlora_native",
      "sources": ["native/addon.c", "native/blas.c", "native/elementwise.c", "native/rows.c", "native/fused.c", "native/parallel.c", "native/optim.c", "native/grid.c"],
      "cflags": ["-O3", "-fno-math-errno", "-fno-trapping-math", "-std=c11", "-ffp-contract=off", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-unused-variable", "-Wno-unused-but-set-variable", "-Werror=implicit-function-declaration"],
      "cflags!": ["-O2"],
      "libraries": ["-ldl", "-lm", "-lpthread"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
