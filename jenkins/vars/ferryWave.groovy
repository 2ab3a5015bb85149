// Shared-library step: ferryWave(wave: 'prod', bundle: 'build/app')
//
// Runs `ferry release <bundle> --wave <wave> …` in one sh step: ferry bundles
// once, then releases to every environment of ferry.toml's [wave.NAME], stage
// by stage (a stage's environments in parallel), halting on the first failure
// and rolling back by the wave's policy (docs/waves.md). Its exit code, the
// worst environment's, sets the build result through ferryResult exactly as
// for ferryRelease; the receipt (one for the whole wave) gives each
// environment's deployment and the reason a wave halted. See ferryWave.txt.

def call(Map args = [:]) {
    String wave = required(args, 'wave')
    String bundle = required(args, 'bundle')
    String receipt = (args.receipt ?: 'ferry-receipt.json') as String
    List<String> cmd = [(args.ferry ?: 'ferry') as String, 'release', bundle, '--wave', wave]
    if (args.get('wait', true)) {
        // One deadline for the whole command: every stage, bake and rollback.
        cmd += ['--timeout', (args.timeout ?: '2h') as String]
    } else {
        cmd << '--no-wait'
    }
    cmd += ['--queue-timeout', (args.queueTimeout ?: '30m') as String]
    if (args.rollback) {
        // failed | all | none: overrides the wave's `rollback` key.
        cmd += ['--wave-rollback', args.rollback as String]
    }
    if (args.rollbackOn) {
        cmd += ['--rollback-on', args.rollbackOn as String]
    }
    cmd += ['--receipt', receipt]
    if (args.config) {
        cmd += ['--config', args.config as String]
    }
    for (Object extra : (args.extraArgs ?: [])) {
        cmd << (extra as String)
    }
    int code = sh(label: "ferry release --wave ${wave}", script: cmd.collect { quote(it) }.join(' '), returnStatus: true)
    if (args.returnStatus) {
        // The caller maps the code itself (see ferryResult).
        return code
    }
    return ferryResult(code: code, receipt: receipt, label: "ferry wave ${wave}", env: wave)
}

private String required(Map args, String key) {
    if (!args[key]) {
        error("ferryWave: the '${key}' argument is required, e.g. ferryWave(wave: 'prod', bundle: 'build/app')")
    }
    return args[key] as String
}

// POSIX single-quote: the value reaches ferry as one argument, untouched.
private static String quote(String s) {
    return "'" + s.replace("'", "'\"'\"'") + "'"
}
