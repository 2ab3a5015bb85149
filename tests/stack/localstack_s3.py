"""LocalStack's S3, alone, on 127.0.0.1:PORT, for ferry's test stack.

    .venv-localstack/bin/python tests/stack/localstack_s3.py PORT ROOT

Why LocalStack: unlike moto, its S3 checks every body against the checksum
the client sent (x-amz-checksum-*, Content-MD5, aws-chunked trailers) and
answers BadDigest, as S3 does. tests/stack/src/localstack.rs starts this.

Runs LocalStack's own runtime in this process (what its Docker image runs),
without Docker and with nothing reaching past loopback:
- only S3, loaded before "Ready." so the first request does not pay for it;
- the gateway on 127.0.0.1:PORT only; no DNS server; nothing persisted;
- no analytics events, no TLS certificate download;
- every file under ROOT (LocalStack's file system root and, patched below,
  the S3 object store, which LocalStack otherwise shares in /tmp between
  all instances);
- a guard refusing any socket connection or name lookup that is not
  loopback, so an outbound call fails loudly in the log instead of leaving.
"""

import os
import socket
import sys


def configure(port, root):
    settings = {
        "SERVICES": "s3",
        "EAGER_SERVICE_LOADING": "1",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "LOCALSTACK_HOST": f"127.0.0.1:{port}",
        "DNS_ADDRESS": "0",
        "PERSISTENCE": "0",
        "DISABLE_EVENTS": "1",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        # LocalStack takes any container for its own image and would then
        # write to /var/lib/localstack; host mode keeps it under ROOT.
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": os.path.join(root, "fs"),
        # Its profile files (~/.localstack/*.env) must not change the server.
        "CONFIG_DIR": os.path.join(root, "config"),
        "LS_LOG": "info",
    }
    for name in list(os.environ):
        if name.startswith(("LOCALSTACK_", "AWS_")) and name not in settings:
            del os.environ[name]
    os.environ.update(settings)


LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host):
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host)
    if host in LOOPBACK_NAMES or host.startswith("127.") or host in ("::1", "0.0.0.0", "::", ""):
        return True
    return False


def guard_network():
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def refuse(what, host):
        sys.stderr.write(f"localstack_s3: refused {what} {host!r}: the test server stays on loopback\n")
        sys.stderr.flush()
        raise OSError(f"localstack_s3: {what} {host!r} refused (loopback only)")

    def getaddrinfo(host, *args, **kwargs):
        if not is_loopback(host):
            refuse("name lookup of", host)
        return real_getaddrinfo(host, *args, **kwargs)

    def gethostbyname(host):
        if not is_loopback(host):
            refuse("name lookup of", host)
        return "127.0.0.1"

    def target(address):
        return address[0] if isinstance(address, tuple) else None

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(target(address)):
            refuse("connection to", address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(target(address)):
            refuse("connection to", address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname
    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: localstack_s3.py PORT ROOT")
    port, root = sys.argv[1], os.path.abspath(sys.argv[2])
    configure(port, root)
    guard_network()

    # LocalStack reads its configuration when first imported: only now.
    from localstack.services.s3 import provider as s3_provider
    from localstack.utils.aws import aws_stack

    s3_provider.DEFAULT_S3_TMP_DIR = os.path.join(root, "s3-objects")
    # It would look up "s3.<LOCALSTACK_HOST>" in DNS to pick a host name for
    # its internal clients; there is none, and the answer is known.
    aws_stack.CACHE_S3_HOSTNAME_DNS_STATUS = False

    from localstack.runtime.main import main as run

    run()


if __name__ == "__main__":
    main()
