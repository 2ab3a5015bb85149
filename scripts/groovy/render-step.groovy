// Runs a shared-library step (jenkins/vars/NAME.groovy) outside Jenkins with
// a recording `sh`, and prints the shell script it would have run, so a test
// can run that script with bash against the local stack.
//
// usage: groovy render-step.groovy jenkins/vars/ferryRelease.groovy 'env=production' 'bundle=build/app' …
// Values "true"/"false" become booleans; `list:a,b` becomes a list.

File file = new File(args[0])
Map stepArgs = [:]
args.drop(1).each { String kv ->
    int i = kv.indexOf('=')
    String k = kv.substring(0, i)
    String v = kv.substring(i + 1)
    stepArgs[k] = v == 'true' ? true : v == 'false' ? false : v.startsWith('list:') ? v.substring(5).split(',') as List : v
}

List<String> scripts = []
Binding binding = new Binding()
binding.setVariable('env', [HOME: System.getenv('HOME') ?: '/tmp', WORKSPACE: System.getProperty('user.dir')])
binding.setVariable('sh', { Map m -> scripts << (m.script as String); return 0 })
binding.setVariable('error', { String msg -> throw new IllegalArgumentException(msg) })
binding.setVariable('withEnv', { List vars, Closure body -> body() })
// The step's exit-code mapping is checked by harness.groovy; here only the script matters.
binding.setVariable('ferryResult', { Map m -> null })

Script step = new GroovyShell(binding).parse(file)
try {
    step.invokeMethod('call', [stepArgs] as Object[])
} catch (IllegalArgumentException e) {
    System.err.println("step error: ${e.message}")
    System.exit(2)
}
scripts.each { println it }
