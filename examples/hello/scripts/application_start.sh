#!/bin/bash
# Starts the app. hello is static files, so there is no process to start;
# a real app would `systemctl restart` its unit here.
set -euo pipefail
root="${EMULATOR_INSTANCE_ROOT:-}"
echo "ApplicationStart: hello version $(cat "$root/opt/hello/VERSION") is live"
