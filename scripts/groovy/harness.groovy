// Runs ferry's Jenkins snippets outside Jenkins, once per ferry exit code,
// with stand-ins for the Pipeline steps they call, and prints one JSON line
// per code: the build result, each stage's result, the build description,
// the steps called and the log. tests/jenkins.rs asserts on those lines.
//
// usage:
//   groovy harness.groovy [options] jenkinsfile jenkins/Jenkinsfile
//   groovy harness.groovy [options] step jenkins/vars/ferryRelease.groovy env=production bundle=build/app
//   groovy harness.groovy [options] snippet FILE        (a `stage(…) { … }` plus helper methods)
// options:
//   --codes 0,1,…,abort   exit codes the fake `sh` returns for a ferry command;
//                         `abort` makes that `sh` throw as a Jenkins abort does
//   --receipts FILE       JSON object: exit code → the receipt ferry would have
//                         written (absent: no receipt); written where the
//                         command's --receipt points, before `sh` returns
//   --ferry REGEX         which sh scripts get the code (default: ferry release|rollback)
//   --stage NAME          only in this stage (Jenkinsfile); other sh steps return 0
//   --param K=V           a build parameter (params.K)
//   --vars DIR            shared-library steps callable by name (default jenkins/vars)
//
// What it models, from the plugins' sources: hudson.model.Result's order and
// Run.setResult (a result only gets worse); `sh` (returnStatus returns the
// code; otherwise a non-zero code throws "script returned exit code N";
// returnStdout throws likewise; an abort throws even with returnStatus);
// `error` (throws AbortException); `unstable` (marks the step's stage and the
// build UNSTABLE); `catchError` (catches, sets buildResult on the build and
// stageResult on the stage, defaults FAILURE/SUCCESS, continues); readJSON
// (missing file throws; without returnPojo a JSON null is a non-null object,
// as json-lib's JSONNull is); declarative stages, `when`, `post`, and the
// skipping of later stages after a failure. What it cannot show: see
// docs/jenkins.md, "What the harness cannot show".

import groovy.json.JsonOutput
import groovy.json.JsonSlurper

// ---------------------------------------------------------------- results --

class Results {
    static final List<String> ORDER = ['SUCCESS', 'UNSTABLE', 'FAILURE', 'NOT_BUILT', 'ABORTED']

    static String worse(String a, String b) {
        if (a == null) return b
        if (b == null) return a
        return ORDER.indexOf(b) > ORDER.indexOf(a) ? b : a
    }

    static String check(String r) {
        if (!ORDER.contains(r)) throw new IllegalArgumentException("not a build result: ${r}")
        return r
    }
}

/** hudson.AbortException: what `error` and a failed `sh` throw. */
class AbortException extends RuntimeException {
    AbortException(String m) { super(m) }
}

/** FlowInterruptedException: an abort, a timeout, a superseding milestone. */
class FlowInterrupted extends RuntimeException {
    String result
    FlowInterrupted(String result, String m) { super(m); this.result = result }
}

/** json-lib's JSONNull: what readJSON returns for null without returnPojo. */
class FakeJSONNull {
    String toString() { 'null' }
    boolean equals(Object o) { o == null || o instanceof FakeJSONNull }
    int hashCode() { 0 }
}

/** The `currentBuild` global variable (RunWrapper). */
class FakeBuild {
    String result
    String description
    String displayName

    void setResult(String r) { result = Results.worse(result, Results.check(r)) }
    String getCurrentResult() { result ?: 'SUCCESS' }
    boolean resultIsBetterOrEqualTo(String r) { Results.ORDER.indexOf(currentResult) <= Results.ORDER.indexOf(r) }
    boolean resultIsWorseOrEqualTo(String r) { Results.ORDER.indexOf(currentResult) >= Results.ORDER.indexOf(r) }
}

class StageRecord {
    String name
    String parent
    String result          // null while running: SUCCESS unless marked
    boolean skipped
    String agent
    Integer timeoutMinutes
    String lock
    List<String> steps = []
}

/** One run: the build, its stages, the log, the steps called. */
class Run {
    FakeBuild build = new FakeBuild()
    Map<String, StageRecord> stages = new LinkedHashMap<>()
    List<StageRecord> open = []
    List<String> log = []
    List<String> steps = []
    List<String> shScripts = []
    List<String> receiptsRead = []
    List<String> archived = []
    String thrown
    Object returned

    void mark(String result) {
        if (open) open[-1].result = Results.worse(open[-1].result, result)
    }

    void step(String what) {
        steps << what
        open.each { it.steps << what }
    }
}

// ---------------------------------------------------------------- options --

Map opts = [codes: ['0'], receipts: [:], ferry: /(?:^|[\s;&|'"])ferry'?\s+'?(?:release|rollback)\b/, stage: null, params: [:], vars: 'jenkins/vars']
List<String> rest = []
for (int i = 0; i < args.length; i++) {
    switch (args[i]) {
        case '--codes': opts.codes = args[++i].split(',') as List; break
        case '--receipts': opts.receipts = new JsonSlurper().parse(new File(args[++i])); break
        case '--ferry': opts.ferry = args[++i]; break
        case '--stage': opts.stage = args[++i]; break
        case '--param':
            String kv = args[++i]
            opts.params[kv.substring(0, kv.indexOf('='))] = kv.substring(kv.indexOf('=') + 1)
            break
        case '--vars': opts.vars = args[++i]; break
        default: rest << args[i]
    }
}
if (rest.size() < 2 || !(rest[0] in ['jenkinsfile', 'step', 'snippet'])) {
    System.err.println('usage: harness.groovy [options] jenkinsfile|step|snippet FILE [key=value…]')
    System.exit(2)
}
String mode = rest[0]
File target = new File(rest[1])

// --------------------------------------------------------- the steps ------

/** Replaces JSON nulls by FakeJSONNull, as readJSON without returnPojo does. */
Object jsonLib(Object v) {
    if (v == null) return new FakeJSONNull()
    if (v instanceof Map) return v.collectEntries { k, x -> [(k): jsonLib(x)] }
    if (v instanceof List) return v.collect { jsonLib(it) }
    return v
}

String receiptPath(String script) {
    def m = script =~ /--receipt'?(?:=|\s+)(?:'([^']+)'|"([^"]+)"|(\S+))/
    if (!m.find()) return null
    return m.group(1) ?: m.group(2) ?: m.group(3)
}

Binding newBinding(Run run, String code, File workspace, Map opts, String mode) {
    Binding b = new Binding()
    Map env = [HOME: workspace.path, WORKSPACE: workspace.path, JOB_NAME: 'web/main', BUILD_NUMBER: '42',
               BUILD_TAG: 'jenkins-web-main-42', JENKINS_URL: 'https://jenkins.example.com/']
    b.setVariable('env', env)
    b.setVariable('params', opts.params)
    b.setVariable('currentBuild', run.build)
    Closure inStage = { -> opts.stage == null || run.open.any { it.name == opts.stage } }

    b.setVariable('sh', { Object arg ->
        Map m = arg instanceof Map ? arg : [script: arg as String]
        String script = m.script as String
        run.shScripts << script
        run.step("sh:${m.label ?: script.trim().readLines()[0]}")
        boolean isFerry = (script =~ opts.ferry).find()
        int status = 0
        if (isFerry && !inStage()) {
            // A ferry command of another stage succeeds, with the code-0 receipt.
            Object receipt = opts.receipts['0']
            String path = receiptPath(script)
            if (receipt != null && path != null) {
                new File(workspace, path).text = JsonOutput.prettyPrint(JsonOutput.toJson(receipt))
            }
        } else if (isFerry) {
            Object receipt = opts.receipts[code]
            String path = receiptPath(script)
            if (receipt != null && path != null) {
                new File(workspace, path).text = JsonOutput.prettyPrint(JsonOutput.toJson(receipt))
            }
            if (code == 'abort') {
                run.log << 'Sending interrupt signal to process'
                throw new FlowInterrupted('ABORTED', 'Aborted by anonymous')
            }
            status = code as int
        }
        if (m.returnStatus && m.returnStdout) throw new IllegalArgumentException('You may not select both returnStdout and returnStatus.')
        if (m.returnStatus) return status
        if (status != 0) throw new AbortException("script returned exit code ${status}")
        return m.returnStdout ? '' : null
    })
    b.setVariable('error', { String msg -> run.step('error'); throw new AbortException(msg) })
    b.setVariable('unstable', { Object arg ->
        String msg = arg instanceof Map ? arg.message : arg as String
        if (!msg?.trim()) throw new IllegalArgumentException('A non-empty message is required')
        run.step('unstable')
        run.mark('UNSTABLE')
        run.build.result = 'UNSTABLE'
        run.log << "WARNING: ${msg}".toString()
    })
    b.setVariable('catchError', { Map o, Closure body ->
        run.step("catchError:${o.buildResult ?: 'FAILURE'}/${o.stageResult ?: 'SUCCESS'}")
        String buildResult = Results.check((o.buildResult ?: 'FAILURE') as String)
        String stageResult = Results.check((o.stageResult ?: 'SUCCESS') as String)
        try {
            body()
        } catch (AbortException e) {
            if (o.message) run.log << "ERROR: ${o.message}".toString()
            run.log << "ERROR: ${e.message}".toString()
            if (buildResult != 'SUCCESS') run.build.result = buildResult
            if (stageResult != 'SUCCESS') run.mark(stageResult)
        } catch (FlowInterrupted e) {
            if (o.containsKey('catchInterruptions') && !o.catchInterruptions) throw e
            run.build.result = e.result
            run.mark(e.result)
        }
        return null
    })
    b.setVariable('echo', { Object msg -> run.step('echo'); run.log << (msg as String) })
    b.setVariable('fileExists', { Object arg ->
        String f = arg instanceof Map ? arg.file : arg as String
        run.step("fileExists:${f}")
        return new File(workspace, f).isFile()
    })
    b.setVariable('readJSON', { Map o ->
        run.step("readJSON:${o.file}")
        run.receiptsRead << (o.file as String)
        File f = new File(workspace, o.file as String)
        if (!f.isFile()) throw new FileNotFoundException("${f} does not exist.")
        Object v = new JsonSlurper().parse(f)
        return o.returnPojo ? v : jsonLib(v)
    })
    b.setVariable('withEnv', { List vars, Closure body ->
        run.step('withEnv')
        Map saved = new LinkedHashMap(env)
        vars.each { String kv ->
            String k = kv.substring(0, kv.indexOf('='))
            String v = kv.substring(kv.indexOf('=') + 1)
            if (k.contains('+')) { k = k.substring(0, k.indexOf('+')); v = "${v}:${env[k] ?: ''}" }
            env[k] = v
        }
        try { return body() } finally { env.clear(); env.putAll(saved) }
    })
    Closure wrapper = { String name -> { Object[] a -> run.step(name); return (a[-1] as Closure).call() } }
    b.setVariable('withCredentials', wrapper('withCredentials'))
    b.setVariable('withAWS', wrapper('withAWS'))
    b.setVariable('timeout', { Map o, Closure body -> run.step("timeout:${o.time}"); body() })
    b.setVariable('lock', { Object[] a -> run.step("lock:${a[0] instanceof Map ? a[0].resource : a[0]}"); (a[-1] as Closure).call() })
    b.setVariable('milestone', { Object a -> run.step("milestone:${a instanceof Map ? (a.label ?: a.ordinal) : a}") })
    b.setVariable('input', { Object a -> run.step('input'); run.log << "input: ${a instanceof Map ? a.message : a}".toString(); return null })
    b.setVariable('archiveArtifacts', { Object a ->
        String what = a instanceof Map ? a.artifacts : a as String
        run.step("archiveArtifacts:${what}")
        run.archived << what
    })
    b.setVariable('junit', { Object a -> run.step("junit:${a instanceof Map ? a.testResults : a}") })
    b.setVariable('stash', { Map o -> run.step("stash:${o.name}") })
    b.setVariable('unstash', { String n -> run.step("unstash:${n}") })
    b.setVariable('checkout', { Object a -> run.step('checkout') })
    b.setVariable('deleteDir', { -> run.step('deleteDir') })
    b.setVariable('script', { Closure body -> body() })
    b.setVariable('scm', 'scm')

    // Shared-library steps (vars/NAME.groovy) callable as NAME(…), as Jenkins does.
    File vars = new File(opts.vars as String)
    if (vars.isDirectory()) {
        vars.listFiles().findAll { it.name.endsWith('.groovy') }.each { File f ->
            String name = f.name - '.groovy'
            b.setVariable(name, { Object[] a ->
                Script s = new GroovyShell(b).parse(f)
                return s.invokeMethod('call', a)
            })
        }
    }
    return b
}

// ------------------------------------------------- declarative pipeline ---

/** Collects a closure's directives (agent, options, when, …) by name. */
class Directives {
    Map<String, Object> seen = [:]
    def methodMissing(String name, Object argsIn) {
        Object[] a = argsIn as Object[]
        seen[name] = a.length == 1 ? a[0] : a.toList()
        return null
    }
    // `agent any`, `agent none`; anything else is the script's (params, env…).
    def propertyMissing(String name) {
        if (name in ['any', 'none']) return name
        throw new MissingPropertyException(name, Directives)
    }
    static Map<String, Object> of(Closure c, Object owner) {
        Directives d = new Directives()
        Closure x = c.rehydrate(d, owner, owner)
        x.resolveStrategy = Closure.DELEGATE_FIRST
        x.call()
        return d.seen
    }
}

/** The options {} of a stage: timeout and lock are recorded, the rest ignored. */
class StageOptions {
    Integer timeoutMinutes
    String lock
    void timeout(Map o) {
        String unit = (o.unit ?: 'MINUTES') as String
        int t = o.time as int
        timeoutMinutes = unit == 'HOURS' ? t * 60 : unit == 'SECONDS' ? (int) Math.ceil(t / 60.0) : t
    }
    void lock(Object o) { lock = (o instanceof Map ? o.resource : o) as String }
    def methodMissing(String name, Object a) { null }
}

class StagesBlock {
    List<List> stages = []
    void stage(String name, Closure body) { stages << [name, body] }
}

class Pipeline {
    Run run
    Script script
    String agent

    Pipeline(Run run, Script script) { this.run = run; this.script = script }

    /** A collected closure, run with the script as its owner (as Jenkins runs steps). */
    Object bare(Object c) {
        Closure x = (c as Closure).rehydrate(script, script, script)
        x.resolveStrategy = Closure.OWNER_FIRST
        return x.call()
    }

    Object agentOf(Object a) {
        if (a == null) return null
        if (a instanceof Closure) {
            Map d = Directives.of(a as Closure, script)
            return d.label ? "label:${d.label}".toString() : d.keySet().join(',')
        }
        return a.toString()
    }

    void runPipeline(Closure body) {
        Map d = Directives.of(body, script)
        agent = agentOf(d.agent)
        if (d.environment) {
            Map env = script.binding.getVariable('env') as Map
            Closure e = (d.environment as Closure).rehydrate(env, script, script)
            e.resolveStrategy = Closure.DELEGATE_FIRST
            e.call()
        }
        Throwable failure = null
        try {
            runStages(d.stages as Closure, null)
        } catch (AbortException | FlowInterrupted | FileNotFoundException e) {
            failure = e
        }
        if (failure != null) {
            run.thrown = failure.message
            run.build.result = failure instanceof FlowInterrupted ? failure.result : 'FAILURE'
        }
        if (d.post) runPost(d.post as Closure)
    }

    void runStages(Closure block, StageRecord parent) {
        StagesBlock sb = new StagesBlock()
        Closure c = block.rehydrate(sb, script, script)
        c.resolveStrategy = Closure.DELEGATE_FIRST
        c.call()
        // After a failure the remaining stages are skipped, as Declarative
        // shows them ("skipped due to earlier failure(s)"), and the failure
        // goes on up. A parent stage is as bad as its worst child.
        Throwable failure = null
        for (List s : sb.stages) {
            StageRecord r = new StageRecord(name: s[0], parent: parent?.name)
            run.stages[r.name] = r
            if (failure != null) { r.skipped = true; continue }
            try {
                runStage(r, s[1] as Closure)
            } catch (AbortException | FlowInterrupted | FileNotFoundException e) {
                failure = e
            }
            if (parent != null && !r.skipped) parent.result = Results.worse(parent.result, r.result)
        }
        if (failure != null) throw failure
    }

    void runStage(StageRecord r, Closure body) {
        Map d = Directives.of(body, script)
        r.agent = agentOf(d.agent)
        if (d.when) {
            Map w = Directives.of(d.when as Closure, script)
            if (w.expression && !bare(w.expression)) { r.skipped = true; return }
        }
        if (d.options) {
            StageOptions o = new StageOptions()
            Closure c = (d.options as Closure).rehydrate(o, script, script)
            c.resolveStrategy = Closure.DELEGATE_FIRST
            c.call()
            r.timeoutMinutes = o.timeoutMinutes
            r.lock = o.lock
        }
        run.open << r
        Throwable failure = null
        try {
            if (d.steps) bare(d.steps)
            if (d.stages) runStages(d.stages as Closure, r)
        } catch (AbortException | FlowInterrupted | FileNotFoundException e) {
            failure = e
            r.result = Results.worse(r.result, e instanceof FlowInterrupted ? e.result : 'FAILURE')
            run.build.result = e instanceof FlowInterrupted ? e.result : 'FAILURE'
            run.log << "ERROR: ${e.message}".toString()
        } finally {
            if (d.post) runPost(d.post as Closure)
            run.open.remove(r)
        }
        if (r.result == null) r.result = 'SUCCESS'
        if (failure != null) throw failure
    }

    void runPost(Closure post) {
        Map conditions = Directives.of(post, script)
        String now = run.build.currentResult
        Map<String, Boolean> applies = [always: true, success: now == 'SUCCESS', unstable: now == 'UNSTABLE',
                                        failure: now == 'FAILURE', notBuilt: now == 'NOT_BUILT', aborted: now == 'ABORTED',
                                        unsuccessful: now != 'SUCCESS', cleanup: true]
        ['always', 'success', 'unstable', 'failure', 'notBuilt', 'aborted', 'unsuccessful', 'cleanup'].each { String k ->
            if (conditions[k] && applies[k]) bare(conditions[k])
        }
    }
}

// --------------------------------------------------------------- runs -----

List<String> lines = []
for (String code : opts.codes) {
    Run run = new Run()
    File workspace = File.createTempDir('ferry-harness', '')
    Pipeline pipeline = null
    try {
        Binding b = newBinding(run, code, workspace, opts, mode)
        b.setVariable('pipeline', { Closure body -> pipeline.runPipeline(body) })
        // A scripted-style `stage` at the top of a snippet behaves like a declarative one.
        b.setVariable('stage', { String name, Closure body ->
            StageRecord r = new StageRecord(name: name)
            run.stages[name] = r
            try {
                pipeline.runStage(r, body)
            } catch (AbortException | FlowInterrupted | FileNotFoundException e) {
                run.thrown = e.message
            }
        })
        switch (mode) {
            case 'jenkinsfile':
            case 'snippet':
                Script s = new GroovyShell(b).parse(target.text, target.name.replaceAll(/[^A-Za-z0-9_]/, '_'))
                pipeline = new Pipeline(run, s)
                s.run()
                break
            case 'step':
                Map stepArgs = [:]
                rest.drop(2).each { String kv ->
                    String k = kv.substring(0, kv.indexOf('='))
                    String v = kv.substring(kv.indexOf('=') + 1)
                    stepArgs[k] = v == 'true' ? true : v == 'false' ? false : v.startsWith('list:') ? (v.substring(5).split(',') as List) : v
                }
                Script s = new GroovyShell(b).parse(target)
                pipeline = new Pipeline(run, s)
                // The step runs inside one stage, as a user's pipeline would call it.
                StageRecord r = new StageRecord(name: 'step')
                run.stages['step'] = r
                run.open << r
                try {
                    run.returned = s.invokeMethod('call', [stepArgs] as Object[])
                } catch (AbortException | FlowInterrupted | FileNotFoundException e) {
                    run.thrown = e.message
                    String res = e instanceof FlowInterrupted ? e.result : 'FAILURE'
                    r.result = Results.worse(r.result, res)
                    run.build.result = res
                } finally {
                    run.open.remove(r)
                }
                if (r.result == null) r.result = 'SUCCESS'
                break
        }
    } catch (MissingMethodException e) {
        System.err.println("harness: no stand-in for `${e.method}` (${e.message}); add one to scripts/groovy/harness.groovy")
        System.exit(3)
    } finally {
        workspace.deleteDir()
    }
    Map stages = run.stages.collectEntries { String k, StageRecord r ->
        [(k): [result: r.skipped ? 'SKIPPED' : (r.result ?: 'SUCCESS'), parent: r.parent, agent: r.agent,
               timeout_minutes: r.timeoutMinutes, lock: r.lock, steps: r.steps]]
    }
    Object returned = run.returned instanceof Map ? run.returned.collectEntries { k, v -> [(k): v instanceof FakeJSONNull ? null : v] } : run.returned
    lines << JsonOutput.toJson([
        code: code, build: run.build.currentResult, stages: stages, pipeline_agent: pipeline?.agent,
        description: run.build.description, thrown: run.thrown, log: run.log, steps: run.steps,
        sh: run.shScripts, receipts_read: run.receiptsRead, archived: run.archived, returned: returned,
    ])
}
lines.each { println it }
