use supervisor::supervise;

// A slip in the typed form's first line, where items are expected: its own
// error, not one spanned on the whole call.
supervise! {
    pub strcut Services;
    daemon worker = "worker";
}

fn main() {}
