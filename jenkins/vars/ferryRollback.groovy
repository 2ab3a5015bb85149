// Shared-library step: ferryRollback(env: 'production' [, to: 'd-XXXX'])
//
// Runs `ferry rollback --env <env> [--to <target>]`, which follows the
// rollback deployment to its end. Without `to`, ferry redeploys the last
// successful release before the current one. The exit code sets the build
// result through ferryResult, as for ferryRelease. It does not ask: put an
// `input` before it (outside any agent) where a person should confirm, as
// jenkins/Jenkinsfile.rollback does.

def call(Map args = [:]) {
    if (!args.env) {
        error("ferryRollback: the 'env' argument is required, e.g. ferryRollback(env: 'production')")
    }
    String environment = args.env as String
    String receipt = (args.receipt ?: 'ferry-receipt.json') as String
    List<String> cmd = [(args.ferry ?: 'ferry') as String, 'rollback', '--env', environment]
    if (args.to) {
        cmd += ['--to', args.to as String]
    }
    if (args.get('wait', true)) {
        cmd += ['--timeout', (args.timeout ?: '50m') as String]
    } else {
        cmd << '--no-wait'
    }
    cmd += ['--receipt', receipt]
    if (args.config) {
        cmd += ['--config', args.config as String]
    }
    int code = sh(label: "ferry rollback ${environment}", script: cmd.collect { quote(it) }.join(' '), returnStatus: true)
    if (args.returnStatus) {
        return code
    }
    return ferryResult(code: code, receipt: receipt, label: "ferry rollback ${environment}", env: environment)
}

// POSIX single-quote: the value reaches ferry as one argument, untouched.
private static String quote(String s) {
    return "'" + s.replace("'", "'\"'\"'") + "'"
}
