"""One tensor's numbers: float64 statistics accumulated chunk by chunk, histograms, previews."""
