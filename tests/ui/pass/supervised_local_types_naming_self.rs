use supervisor::{supervised, Context};

// Types declared in the body have a `Self` of their own: the fn is free.
#[supervised]
async fn job(_ctx: Context) {
    struct Node {
        next: Option<Box<Self>>,
    }
    enum List {
        Nil,
        Cons(u8, Box<Self>),
    }
    let _ = Node { next: None }.next.is_none();
    let _ = matches!(List::Cons(1, Box::new(List::Nil)), List::Cons(..));
}

fn main() {
    let _ = job::spec();
}
