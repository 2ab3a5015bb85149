#!/bin/bash
# Stops the running app, if any. On a first deployment there is nothing to stop.
set -euo pipefail
echo "ApplicationStop: stopping hello on ${EMULATOR_INSTANCE_ID:-$(hostname)} (nothing runs yet on a first deploy)"
