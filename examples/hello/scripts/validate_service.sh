#!/bin/bash
# Fails the deployment (and triggers a rollback, if enabled) unless the app
# was really installed.
set -euo pipefail
root="${EMULATOR_INSTANCE_ROOT:-}"
page="$root/opt/hello/index.html"
if [ -f "$page" ]; then
    echo "ValidateService: $page is in place"
else
    echo "ValidateService: $page is missing" >&2
    exit 1
fi
