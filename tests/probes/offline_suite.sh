#!/bin/sh
# Run the test suite inside an empty network namespace: no interface but loopback, no route
# anywhere. Proves the tool never needed the network. Needs unprivileged user namespaces
# (or root); `ip` is only used to bring loopback up for the guard's canary tests.
#   sh tests/probes/offline_suite.sh [pytest arguments]
set -eu
cd "$(dirname "$0")/../.."
exec unshare -rn sh -c '
  ip link set lo up 2>/dev/null || echo "offline_suite: loopback stays down" >&2
  exec "$@"' offline_suite python3 -m pytest "$@"
