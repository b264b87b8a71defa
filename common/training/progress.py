"""Progress bars: steps/s and the latest figures, silent when stderr is not a terminal."""
from __future__ import annotations

from tqdm import tqdm


def progress(total: int, desc: str) -> tqdm:
    bar = tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, mininterval=1.0, disable=None)
    bar.notes = {}
    return bar


def note(bar, **values) -> None:
    """Add figures to the bar's postfix, keeping the others."""
    bar.notes.update(values)
    bar.set_postfix(bar.notes, refresh=False)


def log_eval(bar, label: str, step: int, value: float, agent=None) -> None:
    """One line above the bar: the evaluation return and, when the agent has trained, its losses."""
    note(bar, last_eval=f"{value:.1f}")
    extra = f"  {agent.loss_summary()}" if agent is not None and agent.last_loss else ""
    bar.write(f"[{label}] step {step}: eval return {value:.2f}{extra}")
