"""The training progress bar (rich, on stderr): env steps per seed, steps/s over all
seeds, ETA. Off with --no-progress and on every process of a distributed run but the first."""

from __future__ import annotations


class Progress:
    """A rich progress bar on stderr: env steps per seed, steps/s over all seeds, ETA."""

    def __init__(self, total_steps: int, enabled: bool):
        self.enabled = enabled
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import (
            Progress as RichProgress,
        )

        self.bar = RichProgress(
            TextColumn("{task.percentage:>3.0f}%"), BarColumn(bar_width=20),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False,
        )
        self.task = self.bar.add_task("train", total=total_steps, rate="")
        self.bar.start()

    def advance(self, steps_done: int, steps_per_second: float) -> None:
        if self.enabled:
            self.bar.update(
                self.task, completed=steps_done, rate=f"{steps_per_second:,.0f} env steps/s"
            )

    def close(self) -> None:
        if self.enabled:
            self.bar.stop()
