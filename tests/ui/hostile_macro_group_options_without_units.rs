use supervisor::{supervise, Context};

async fn serve_api(_ctx: Context) {}

// A group written with its options and no units after them, as one whose
// units are added at run time might be: told once, on the options, to add
// the units' braces, where each option was called a setting among units
// (and `critical` an unknown kind of entry). The options are read as the
// group's: `api` finds the group it depends on, and `jobs`' field is there.
supervise! {
    pub struct Services;
    group jobs { critical, restart = "1s", max = 3 }
    task api = serve_api { depends_on = [jobs] };
}

fn main() {
    let _ = |services: Services| services.jobs.path().to_owned();
}
