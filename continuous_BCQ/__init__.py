"""Continuous-action family: DDPG (behavioral), continuous BCQ and its SQV extension."""
