use supervisor::supervised;

#[supervised]
async fn worker(port: u16) {
    let _ = port;
}

fn main() {}
