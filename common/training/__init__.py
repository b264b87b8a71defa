"""The training runtime: every flag (`flags`) and hyperparameter and the typed, checked config
(`config`); device/seeding/evaluation (`runtime`); the stages (`stages`) and what they are made of: a
stage's checkpoint/resume/guard/evaluation (`run`), env steps into a buffer (`rollout`), the offline data
(`sources`), file names (`paths`), progress bars (`progress`), checkpoints (`checkpoint`), stop conditions
(`guards`), logs (`logs`), the recommender report (`recommend`); and the sweep engine (`sweep`)."""
