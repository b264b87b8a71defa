"""Offline data, bottom to top: what a learner gets (`batch`), a saved buffer's files (`stored`, `chunks`),
the replay buffers (`frame_stack`; `buffers`, their public face), their manifests (`manifest`), the
field's datasets (`datasets`, `dqn_replay`) and logged interactions (`interaction_log`, `heldout`;
`interactions`, their entry)."""
