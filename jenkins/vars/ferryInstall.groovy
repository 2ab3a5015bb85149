// Shared-library step: makes a pinned ferry available to the steps in its body.
//
//   ferryInstall(version: '0.1.0', baseUrl: 'https://artifacts.example.com/ferry/0.1.0',
//                sha256: [x86_64: '<sha256 of ferry-0.1.0-x86_64-linux.tar.gz>',
//                         aarch64: '<sha256 of ferry-0.1.0-aarch64-linux.tar.gz>']) {
//       ferryRelease(env: 'production', bundle: 'build/app')
//   }
//
// With `baseUrl` + `sha256`: the agent's own architecture (`uname -m`: x86_64
// or aarch64) picks the tarball built by scripts/dist, which is checked
// against its SHA-256 before anything is unpacked, then unpacked beside the
// install directory and renamed into place (resources/ferry/install.sh), so
// two executors installing at once never run half a ferry. With `git`
// instead: builds that tag with cargo on the agent. Installs into
// $HOME/.cache/ferry/<version> once per agent.

def call(Map args = [:], Closure body) {
    if (!args.version) {
        error("ferryInstall: 'version' is required so every build runs the same ferry")
    }
    String version = args.version as String
    String root = "${env.HOME}/.cache/ferry/${version}"
    if (args.baseUrl || args.url) {
        Map sums = (args.sha256 instanceof Map) ? (args.sha256 as Map) : [:]
        String base = args.baseUrl as String
        if (!args.baseUrl) {
            // The one-tarball form: `url` names an x86_64 tarball directly.
            String url = args.url as String
            base = url.substring(0, url.lastIndexOf('/'))
            sums = [x86_64: args.sha256]
        }
        if (!sums.x86_64 && !sums.aarch64) {
            error("ferryInstall: 'sha256' is required: sha256: [x86_64: '…', aarch64: '…'] (each tarball's .sha256 file)")
        }
        withEnv(["FERRY_ROOT=${root}", "FERRY_VERSION=${version}", "FERRY_BASE_URL=${base}",
                 "FERRY_SHA256_X86_64=${sums.x86_64 ?: ''}", "FERRY_SHA256_AARCH64=${sums.aarch64 ?: ''}"]) {
            sh(label: "install ferry ${version}", script: libraryResource('ferry/install.sh') + '\n"$FERRY_ROOT/bin/ferry" --version\n')
        }
    } else if (args.git) {
        withEnv(["FERRY_ROOT=${root}", "FERRY_GIT=${args.git}", "FERRY_TAG=v${version}"]) {
            sh(label: "build ferry ${version}", script: '''
                set -eu
                if [ ! -x "$FERRY_ROOT/bin/ferry" ]; then
                    cargo install --locked --git "$FERRY_GIT" --tag "$FERRY_TAG" --root "$FERRY_ROOT" ferry-deploy
                fi
                "$FERRY_ROOT/bin/ferry" --version
            ''')
        }
    } else {
        error("ferryInstall: give either 'baseUrl' and 'sha256' (the release tarballs) or 'git' (build with cargo)")
    }
    withEnv(["PATH+FERRY=${root}/bin"]) {
        body()
    }
}
