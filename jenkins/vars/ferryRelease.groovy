// Shared-library step: ferryRelease(env: 'production', bundle: 'build/app'),
// or for an ECS environment ferryRelease(env: 'production', image: 'URI')
//
// Runs `ferry release <bundle> --env <env> …` in one sh step: ferry bundles,
// uploads, deploys and follows the deployment to its end. Its exit code then
// sets the build result through ferryResult (docs/jenkins.md, "Exit codes and
// the build result"), with the deployment id and outcome from the receipt.
// See ferryRelease.txt for every option.

def call(Map args = [:]) {
    String environment = required(args, 'env')
    if (args.image && args.bundle) {
        error("ferryRelease: give 'bundle' or 'image' (an ECS environment), not both")
    }
    // An ECS environment deploys an image (docs/ecs.md), every other one a bundle.
    List<String> what = args.image ? ['--image', args.image as String] : [required(args, 'bundle')]
    String receipt = (args.receipt ?: 'ferry-receipt.json') as String
    List<String> cmd = [(args.ferry ?: 'ferry') as String, 'release'] + what + ['--env', environment]
    if (args.get('wait', true)) {
        cmd += ['--timeout', (args.timeout ?: '90m') as String]
    } else {
        // Only create the deployment; exit 0 once CodeDeploy has it.
        cmd << '--no-wait'
    }
    cmd += ['--queue-timeout', (args.queueTimeout ?: '30m') as String]
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
    int code = sh(label: "ferry release ${environment}", script: cmd.collect { quote(it) }.join(' '), returnStatus: true)
    if (args.returnStatus) {
        // The caller maps the code itself (see ferryResult).
        return code
    }
    return ferryResult(code: code, receipt: receipt, label: "ferry release ${environment}", env: environment)
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
