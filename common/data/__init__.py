"""Offline data: replay buffers in the reference formats (`buffers`), their manifests (`manifest`), the
field's datasets (`datasets`: DQN Replay, D4RL, Minari) and logged interactions (`interactions`)."""
