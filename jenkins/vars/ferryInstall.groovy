// Shared-library step: makes a pinned ferry available to the steps in its body.
//
//   ferryInstall(version: '0.1.0', url: 'https://artifacts.example.com/ferry/0.1.0/ferry-0.1.0-x86_64-linux.tar.gz',
//                sha256: '<sha256 of the tarball>') {
//       ferryRelease(env: 'production', bundle: 'build/app')
//   }
//
// With `url` + `sha256`: downloads the release tarball built by scripts/dist
// and verifies it. With `git` instead: builds that tag with cargo on the agent.
// Installs into $HOME/.cache/ferry/<version> once per agent.

def call(Map args = [:], Closure body) {
    if (!args.version) {
        error("ferryInstall: 'version' is required so every build runs the same ferry")
    }
    String version = args.version as String
    String root = "${env.HOME}/.cache/ferry/${version}"
    if (args.url) {
        if (!args.sha256) {
            error("ferryInstall: 'sha256' is required with 'url'")
        }
        withEnv(["FERRY_ROOT=${root}", "FERRY_URL=${args.url}", "FERRY_SHA256=${args.sha256}"]) {
            sh(label: "install ferry ${version}", script: '''
                set -eu
                if [ ! -x "$FERRY_ROOT/bin/ferry" ]; then
                    tmp=$(mktemp -d)
                    curl -fsSL "$FERRY_URL" -o "$tmp/ferry.tar.gz"
                    echo "$FERRY_SHA256  $tmp/ferry.tar.gz" | sha256sum -c -
                    mkdir -p "$FERRY_ROOT"
                    tar -xzf "$tmp/ferry.tar.gz" -C "$FERRY_ROOT" --strip-components=1
                    rm -rf "$tmp"
                fi
                "$FERRY_ROOT/bin/ferry" --version
            ''')
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
        error("ferryInstall: give either 'url' and 'sha256' (a release tarball) or 'git' (build with cargo)")
    }
    withEnv(["PATH+FERRY=${root}/bin"]) {
        body()
    }
}
