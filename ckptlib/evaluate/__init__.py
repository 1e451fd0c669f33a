"""Running graphs, in a bounded child process: freeze a checkpoint, load MNIST, plan feeds, check op safety, score."""
