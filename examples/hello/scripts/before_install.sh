#!/bin/bash
# Prepares the target directory. CodeDeploy refuses to overwrite files it did
# not install, so clear out anything left from a manual install.
set -euo pipefail
# The test stack's CodeDeploy emulator roots each simulated instance in a
# directory of its own; on a real instance this is empty.
root="${EMULATOR_INSTANCE_ROOT:-}"
echo "BeforeInstall: preparing $root/opt/hello for deployment ${DEPLOYMENT_ID:-?}"
mkdir -p "$root/opt"
