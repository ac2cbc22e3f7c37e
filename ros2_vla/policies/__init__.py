"""Policy backends behind one interface (flow, OpenVLA, openpi), their registry, observations and runner thread."""
