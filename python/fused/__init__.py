"""fused-compatible SDK of terrafuse."""
