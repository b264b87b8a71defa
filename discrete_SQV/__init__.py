"""Discrete-action family: DQN (behavioral), discrete BCQ and SQV, and the networks they share."""
