#!/bin/sh
# Checks out stage 1's engine (the last commit before the tree engine) under
# target/stage1, then runs it and the current engine alternately in one
# process. Arguments: `tasks`, `statuses` or `daemon` (default: all), then
# the number of rounds.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel)
stage1_commit=6b71583d346f70c9eefcedd35c83be3b79c7003d
if [ ! -d "$root/target/stage1" ]; then
    # A checkout that `cargo clean` removed is still registered: forget it.
    git -C "$root" worktree prune
    git -C "$root" worktree add --detach "$root/target/stage1" "$stage1_commit"
fi
CARGO_TARGET_DIR="$root/target/compare-stage1" exec cargo run --release --manifest-path "$here/Cargo.toml" -- "$@"
