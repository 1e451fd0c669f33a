"""Running graphs: freeze a checkpoint, load MNIST, plan feeds, check op safety, measure accuracy."""
