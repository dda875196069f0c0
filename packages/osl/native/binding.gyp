{
  "targets": [
    {
      "target_name": "cnm_osl",
      "sources": ["cnm_osl.c", "dns_responder.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-format-truncation", "-O2"],
      "libraries": ["-lpthread"]
    }
  ]
}
