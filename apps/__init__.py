"""What a user runs around training: the `corral` console command and the tools it dispatches to."""
