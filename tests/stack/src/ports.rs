//! Free loopback ports for servers we start ourselves.

use std::io;
use std::net::TcpListener;

/// Asks the kernel for a free port on 127.0.0.1.
///
/// The port is released before the caller binds it, so another process can
/// grab it in between; callers retry on "address in use".
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
