#!/usr/bin/env bash
# Every test, from a fresh machine that has Node and apt: installs the Debian packages the tests use,
# the npm packages from the lock file (`npm ci`, which builds the addon and the TypeScript), then runs
# `npm test`. The README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests and benchmarks use: iproute2 (ip netns), postfix (smtp-source and
# smtp-sink as real SMTP peers), corosync (cluster tests; the addon loads its libraries at run time)
# with its client headers (not needed to build: the addon's build checks its own declarations of
# corosync's ABI against them when they are there, native/corosync_dl.cc), keepalived (failover anchor), iperf3 (link anchor), g++/make/python3 (node-gyp),
# chromium (the status page's browser test and bench, driven by puppeteer-core), systemd
# (systemd-analyze verify on packaging/vipmta.service) and util-linux (setpriv: vipmta run as the
# unit runs it, test/cluster/unit-file.test.ts) and nats-server (JetStream, the Event_Nats
# exporter's receiver in test/integration/nats.test.ts) and git (the config repository, issue 16:
# every node's history is a git repository driven through the git command).
packages=(git iproute2 postfix corosync libcpg-dev libquorum-dev libcorosync-common-dev libcmap-dev libvotequorum-dev
          keepalived iperf3 g++ make python3 chromium systemd util-linux nats-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ci: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The addon builds against Node's own headers; on these machines they live under /usr.
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_api.h ]; then
  export npm_config_nodedir=/usr
fi

npm ci --no-audit --no-fund
npm test
