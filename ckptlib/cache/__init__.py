"""A persistent result cache shared by the CLI and every dashboard process: each answer computed once."""
