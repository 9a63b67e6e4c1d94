//! A stand-in for systemd's end of `NOTIFY_SOCKET`: a real unix datagram
//! socket, read for as long as it lives.

use std::time::Duration;

use tokio::net::UnixDatagram;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long to wait for one notification.
const DEADLINE: Duration = Duration::from_secs(30);

/// Reads the socket for as long as it lives, as systemd does, and passes
/// every message on.
pub(crate) fn read_notifications(socket: UnixDatagram) -> mpsc::UnboundedReceiver<String> {
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buffer = vec![0; 4096];
        while let Ok(received) = socket.recv(&mut buffer).await {
            if sender.send(String::from_utf8_lossy(&buffer[..received]).into_owned()).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Receives notifications until one has a line `wanted`; keeps every
/// message received meanwhile in `seen`.
pub(crate) async fn receive_until(
    messages: &mut mpsc::UnboundedReceiver<String>,
    wanted: &str,
    seen: &mut Vec<String>,
) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let message = tokio::time::timeout_at(deadline, messages.recv())
            .await
            .unwrap_or_else(|_| panic!("no {wanted} within {DEADLINE:?}; received {seen:?}"))
            .expect("the socket reader runs");
        let found = message.lines().any(|line| line == wanted);
        seen.push(message);
        if found {
            return;
        }
    }
}
