// Compiles each Groovy file named on the command line without running it,
// so a syntax error in a Jenkinsfile or shared-library step fails CI instead
// of the first real build. Exit 1 on any error.
import org.codehaus.groovy.control.MultipleCompilationErrorsException

int failures = 0
for (String path : args) {
    File file = new File(path)
    try {
        new GroovyShell().parse(file.text, file.name.replaceAll(/[^A-Za-z0-9_]/, '_'))
        println "ok      ${path}"
    } catch (MultipleCompilationErrorsException e) {
        failures++
        System.err.println "ERROR   ${path}\n${e.message}"
    }
}
if (failures > 0) {
    System.exit(1)
}
