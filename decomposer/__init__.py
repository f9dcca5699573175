"""UVD: subgoals from demo videos (embedding backbones, decomposition, relabelling, relay)."""
