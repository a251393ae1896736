{
  "targets": [
    {
      "target_name": "vipmta",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/socket.cc",
        "native/netlink_socket.cc",
        "native/netlink_interfaces.cc",
        "native/netlink_addresses.cc",
        "native/spool.cc",
        "native/spool_core.cc",
        "native/spool_recovery.cc",
        "native/spool_commit.cc",
        "native/spool_journal.cc",
        "native/spool_segments.cc",
        "native/spool_format.cc",
        "native/spool_file.cc",
        "native/spool_crc.cc",
        "native/arp.cc",
        "native/ndisc.cc",
        "native/corosync.cc",
        "native/corosync_connection.cc",
        "native/corosync_events.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
        "_GNU_SOURCE"
      ],
      "cflags_cc": ["-std=c++20", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "libraries": [],
      "conditions": [
        # Corosync is optional at build time: single-node mode needs none, and `npm ci` must work on
        # a machine without its headers. Without them corosync.cc compiles to stubs that throw
        # ERR_COROSYNC_UNAVAILABLE saying what to install (corosync_connection.cc and
        # corosync_events.cc to nothing).
        ["'<!(pkg-config --exists libcpg libquorum && echo 1 || echo 0)'=='1'", {
          "defines": ["VIPMTA_HAVE_COROSYNC=1"],
          "libraries": ["<!@(pkg-config --libs libcpg libquorum)"]
        }]
      ]
    }
  ]
}
