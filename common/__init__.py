"""Pieces every stage shares: environments, replay buffers, augmentation, runtime helpers.

`utils.py` at the repository root re-exports the public names so that stage code reads as in the
reference implementation (`utils.make_env`, `utils.ReplayBuffer`, ...).
"""
