use supervisor::{supervise, Supervisor};

// A setting ended with `,`, as the options in braces are separated: told
// to end with `;`, on the comma, and read as written.
fn main() {
    let _sup: Supervisor = supervise! {
        intensity = 10, period = "60s";
        shutdown_timeout = "30s",
        daemon worker = "worker";
    };
}
