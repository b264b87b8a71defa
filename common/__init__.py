"""The shared layer, one folder per concern, imports going down: errors/io → envs → data → learning →
training (→ utils.py, the families) → reporting. README, "Layout"."""
