use supervisor::{supervise, supervised, Context, Supervisor};

#[supervised(ready = completed, on = "failure")]
async fn migrate(_ctx: Context) -> Result<(), String> {
    Ok(())
}

#[supervised]
async fn warm(_ctx: Context) -> Result<(), String> {
    Ok(())
}

fn main() {
    // The entry's options over the fn's make a one-shot job a success restarts.
    let _restarted: Supervisor = supervise! { task migrate { on = "always" }; };
    let _made_one_shot: Supervisor = supervise! { task warm { ready = completed }; };
    // Sound: the fn's own, and a one-shot job let rest.
    let _fine: Supervisor = supervise! { task migrate; task warm { ready = completed, on = "never" }; };
}
