// Shared-library step: ferryRelease(env: 'production', bundle: 'build/app')
//
// Runs `ferry release <bundle> --env <env> --wait …` in one sh step and fails
// the build with ferry's exit code. See ferryRelease.txt for every option.

def call(Map args = [:]) {
    String environment = required(args, 'env')
    String bundle = required(args, 'bundle')
    List<String> cmd = [(args.ferry ?: 'ferry') as String, 'release', bundle, '--env', environment]
    if (args.get('wait', true)) {
        cmd << '--wait'
        cmd += ['--timeout', (args.timeout ?: '50m') as String]
    }
    if (args.rollbackOn) {
        cmd += ['--rollback-on', args.rollbackOn as String]
    }
    cmd += ['--receipt', (args.receipt ?: 'ferry-receipt.json') as String]
    if (args.config) {
        cmd += ['--config', args.config as String]
    }
    for (Object extra : (args.extraArgs ?: [])) {
        cmd << (extra as String)
    }
    return sh(label: "ferry release ${environment}", script: cmd.collect { quote(it) }.join(' '), returnStatus: args.returnStatus ?: false)
}

private String required(Map args, String key) {
    if (!args[key]) {
        error("ferryRelease: the '${key}' argument is required, e.g. ferryRelease(env: 'production', bundle: 'build/app')")
    }
    return args[key] as String
}

// POSIX single-quote: the value reaches ferry as one argument, untouched.
private static String quote(String s) {
    return "'" + s.replace("'", "'\"'\"'") + "'"
}
