"""The discrete stochastic decision process of Kulkarni et al. 2016 (h-DQN, section 4.1).

Six states s1…s6, observed one-hot; the episode starts in s2. Action 0 (left) moves one state left;
action 1 (right) moves one state right with probability 0.5 (s6 stays s6) and left otherwise.
Reaching s1 ends the episode with reward 1.00 if s6 was visited and 0.01 otherwise. The reward
depends on the history, not on the observation, which is what defeats flat Q-learning. Registered
with a 100-step time limit (truncation), so a policy stuck pushing right still ends its episodes.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

N_STATES = 6
START = 1  # s2


class DiscreteStochasticDecisionProcess(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, right_success: float = 0.5):
        self.observation_space = gym.spaces.Box(0.0, 1.0, (N_STATES,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.right_success = right_success
        self.state, self.visited_s6 = START, False

    def observe(self) -> np.ndarray:
        one_hot = np.zeros(N_STATES, np.float32)
        one_hot[self.state] = 1.0
        return one_hot

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        self.state, self.visited_s6 = START, False
        return self.observe(), {}

    def step(self, action):
        if int(action) == 1 and self.np_random.random() < self.right_success:
            self.state = min(self.state + 1, N_STATES - 1)
        else:
            self.state -= 1
        self.visited_s6 = self.visited_s6 or self.state == N_STATES - 1
        terminated = self.state == 0
        reward = (1.0 if self.visited_s6 else 0.01) if terminated else 0.0
        return self.observe(), reward, terminated, False, {"visited_s6": self.visited_s6}
