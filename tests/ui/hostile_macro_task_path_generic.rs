use supervisor::{supervise, Context, Supervisor};

#[allow(dead_code)]
async fn job(_ctx: Context) {}

fn main() {
    let _sup: Supervisor = supervise! {
        task job::<u8>;
    };
}

// A task entry that names a generic fn is refused on the generic arguments.
