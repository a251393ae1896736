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
        "native/spool_index.cc",
        "native/spool_recovery.cc",
        "native/spool_commit.cc",
        "native/spool_journal.cc",
        "native/spool_segments.cc",
        "native/spool_format.cc",
        "native/spool_file.cc",
        "native/spool_crc.cc",
        "native/spool_events.cc",
        "native/spool_events_recovery.cc",
        "native/spool_commit_events.cc",
        "native/spool_events_js.cc",
        "native/arp.cc",
        "native/ndisc.cc",
        "native/corosync.cc",
        "native/corosync_connection.cc",
        "native/corosync_events.cc",
        "native/corosync_dl.cc"
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
      # Corosync's libcpg and libquorum are dlopen()ed at first use (native/corosync_dl.cc), so the
      # addon builds and runs without them and finds them when corosync is installed later.
      # glibc >= 2.34 has dlopen in libc; -ldl keeps older ones linking.
      "libraries": ["-ldl"]
    }
  ]
}
