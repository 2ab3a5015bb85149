// Shared-library step: ferryResult(code: rc, receipt: 'ferry-receipt.json', label: 'ferry release production')
//
// Turns a ferry exit code into the build result, as docs/jenkins.md
// ("Exit codes and the build result") tabulates it, with the deployment id,
// outcome and reason from ferry's receipt, and adds a line to
// currentBuild.description. ferryRelease and ferryRollback call it; call it
// yourself after your own `sh(returnStatus: true, script: 'ferry …')`.
//
//   0             SUCCESS
//   6, 7          UNSTABLE (unstable): blue/green Ready; failed and rolled back
//   8             NOT_BUILT on the build and the stage (catchError): superseded
//   4, 130, 143   ABORTED on the build and the stage (catchError): stopped, interrupted
//   anything else FAILURE (error) with the receipt's reason; 5 names `ferry watch`
//
// NOT_BUILT and ABORTED mark the stage and return, as catchError does: the
// steps after it still run. Returns [code, result, deploymentId, outcome,
// rollbackDeploymentId, reason] for the codes that do not stop the build.

def call(Map args = [:]) {
    if (args.code == null) {
        error("ferryResult: the 'code' argument is required, e.g. ferryResult(code: rc, receipt: 'ferry-receipt.json')")
    }
    int code = args.code as int
    String receiptFile = (args.receipt ?: 'ferry-receipt.json') as String
    String label = (args.label ?: 'ferry') as String
    String environment = (args.env ?: '<env>') as String
    // returnPojo: a JSON null becomes null, not a json-lib JSONNull, which
    // Groovy counts as true.
    Map receipt = fileExists(receiptFile) ? readJSON(file: receiptFile, returnPojo: true) : [:]
    // A wave's receipt (ferryWave) has a deployment per environment.
    String id = receipt.deployment_id ?: waveDeployments(receipt)
    String summary = "${label}: ${id ?: 'no deployment'} ${receipt.outcome ?: "exit ${code}"}"
    currentBuild.description = currentBuild.description ? "${currentBuild.description}\n${summary}" : summary
    String reason = code == 0 ? summary : "${label}: ${receipt.error ?: receipt.halted_reason ?: reasonFor(code, id, receipt)}"
    Map result = [code: code, deploymentId: id, outcome: receipt.outcome, rollbackDeploymentId: receipt.rollback_deployment_id, reason: reason]
    if (code == 0) {
        echo summary
        result.result = 'SUCCESS'
    } else if (code == 5) {
        error("${reason}. It may still be running: ferry watch ${id ?: '<deployment id>'} --env ${environment}")
    } else if (code == 6) {
        unstable("${reason}. Reroute with: ferry continue ${id} --env ${environment}")
        result.result = 'UNSTABLE'
    } else if (code == 7) {
        unstable(reason)
        result.result = 'UNSTABLE'
    } else if (code == 8) {
        catchError(buildResult: 'NOT_BUILT', stageResult: 'NOT_BUILT') { error(reason) }
        result.result = 'NOT_BUILT'
    } else if (code == 4 || code == 130 || code == 143) {
        catchError(buildResult: 'ABORTED', stageResult: 'ABORTED') { error(reason) }
        result.result = 'ABORTED'
    } else {
        error(reason)
    }
    return result
}

// `eu=d-1 us=d-2` from a wave's receipt; '' for any other.
private String waveDeployments(Map receipt) {
    return (receipt.envs ?: []).findAll { it.deployment_id }.collect { "${it.environment}=${it.deployment_id}" }.join(' ')
}

private String reasonFor(int code, String id, Map receipt) {
    switch (code) {
        case 3: return "deployment ${id} failed: the failed instance, lifecycle event and hook output are in the log above"
        case 4: return "deployment ${id} was stopped outside this build"
        case 5: return "--timeout elapsed before deployment ${id} ended"
        case 6: return "blue/green deployment ${id} is Ready, waiting for traffic to be rerouted"
        case 7: return "deployment ${id} failed and CodeDeploy's rollback ${receipt.rollback_deployment_id ?: ''} restored the previous release"
        case 8: return "superseded: a newer build of this job is deployed or deploying, so this one deployed nothing"
        case 130: case 143: return "ferry was interrupted (${receipt.signal ?: 'a signal'}); the receipt says what it did about the deployment"
        default: return receipt ? "ferry exited ${code}" : "ferry exited ${code} and wrote no receipt (127: ferry is not on PATH; 137: it was killed)"
    }
}
