// Shared-library step: ferryRollback(env: 'production' [, to: 'd-XXXX'])
//
// Runs `ferry rollback --env <env> [--to <target>] --wait`. Without `to`,
// ferry redeploys the last successful release before the current one.

def call(Map args = [:]) {
    if (!args.env) {
        error("ferryRollback: the 'env' argument is required, e.g. ferryRollback(env: 'production')")
    }
    List<String> cmd = [(args.ferry ?: 'ferry') as String, 'rollback', '--env', args.env as String]
    if (args.to) {
        cmd += ['--to', args.to as String]
    }
    if (args.get('wait', true)) {
        cmd << '--wait'
        cmd += ['--timeout', (args.timeout ?: '50m') as String]
    }
    cmd += ['--receipt', (args.receipt ?: 'ferry-receipt.json') as String]
    if (args.config) {
        cmd += ['--config', args.config as String]
    }
    return sh(label: "ferry rollback ${args.env}", script: cmd.collect { quote(it) }.join(' '), returnStatus: args.returnStatus ?: false)
}

private static String quote(String s) {
    return "'" + s.replace("'", "'\"'\"'") + "'"
}
