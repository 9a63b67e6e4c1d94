use supervisor::{supervise, Supervisor};

fn main() {
    let _sup: Supervisor = supervise! {
        group g0 {} { group g1 {} { group g2 {} { group g3 {} { group g4 {} { group g5 {} { group g6 {} { group g7 {} { group g8 {} { group g9 {} { group g10 {} { group g11 {} { group g12 {} { group g13 {} { group g14 {} { group g15 {} { group g16 {} { group g17 {} { group g18 {} { group g19 {} { group g20 {} { group g21 {} { group g22 {} { group g23 {} { group g24 {} { group g25 {} { group g26 {} { group g27 {} { group g28 {} { group g29 {} { group g30 {} { group g31 {} { group g32 {} { group g33 {} { group g34 {} { group g35 {} { group g36 {} { group g37 {} { group g38 {} { group g39 {} { group g40 {} { group g41 {} { group g42 {} { group g43 {} { group g44 {} { group g45 {} { group g46 {} { group g47 {} { group g48 {} { group g49 {} { group g50 {} { group g51 {} { group g52 {} { group g53 {} { group g54 {} { group g55 {} { group g56 {} { group g57 {} { group g58 {} { group g59 {} { group g60 {} { group g61 {} { group g62 {} { group g63 {} { group g64 {} { daemon d = "sleep"; } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } } }
    };
}
