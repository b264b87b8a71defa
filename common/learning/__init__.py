"""Learning pieces every learner shares: the agent base class (`agent`), network blocks and target updates
(`nets`), augmentation (`augment`), the two views of SQV and its controls (`swap`) and the list of
algorithms (`algorithms`)."""
