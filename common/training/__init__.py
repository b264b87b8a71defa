"""The training runtime: the resolved config and its checks (`config`), device/seeding/evaluation
(`runtime`), the stages (`stages`), checkpoints (`checkpoint`), stop conditions (`guards`) and logs
(`logs`)."""
