use supervisor::{supervise, Context, Supervisor};

async fn idle(ctx: Context) {
    ctx.cancelled().await;
}

fn main() {
    // `3u8` and `-1i64` hold their values: accepted.
    let _sup: Supervisor = supervise! {
        task a = idle { max = 3f32 };
        task b = idle { max = -1u32 };
        task c = idle { window = "1s", window_max = 300u8 };
        task d = idle { max = 3u8 };
        task e = idle { max = -1i64 };
        daemon f = "f" { success_codes = [0, -1u8] };
    };
}
