use supervisor::{supervised, Context};

#[supervised(restart = "1s")]
async fn u8(_ctx: Context) {}

#[supervised(restart = "1s")]
async fn r#str(_ctx: Context) {}

fn checksum(data: &[u8]) -> u8 {
    data.iter().fold(0, |a, b| a ^ b)
}

fn main() {
    let _ = checksum(b"abc");
}
