"""Team review: notes and verdicts on runs, checkpoints, diffs and variables, kept in a SQL database."""
