"""Environments: gymnasium/ALE/MinAtar creation with the reference preprocessing (`make`), N envs stepped
together (`vector`), and the envs this project defines: the recommender simulator (`recsys`) and h-DQN's
stochastic decision process (`sdp`). Imports only `common.errors`."""
