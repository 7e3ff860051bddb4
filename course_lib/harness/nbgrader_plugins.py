"""nbgrader preprocessors the grader configures (build/nbgrader/nbgrader_config.py names them): they run inside
nbgrader, outside the sandbox, so this module imports nbgrader (the `instructor` extra).

- CappedExecute: nbgrader's Execute, but what a submission's cells print and display is counted, and past
  `max_output_bytes` (Limits.output_mb) it is dropped, with a note in the cell where the cap was reached: a
  submission printing without end must not grow nbgrader's memory (1 GB of prints made it use 4.4 GB). A cell
  still printing at INTERRUPT_AFTER times the cap is interrupted (KeyboardInterrupt, as at a cell timeout),
  so that reading and dropping the rest does not use up the wall clock.
- HideHiddenTests: for the feedback, when the teacher asks (`--feedback-without-hidden-tests`): the hidden part of
  each test cell is removed, and a failed test shows its error's last line instead of a traceback quoting it.
"""
from __future__ import annotations

import asyncio

from nbclient.util import ensure_async
from nbformat.v4 import new_output
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, Execute
from traitlets import Bool, Integer

from .sandbox import OUTPUT_CAPPED

INTERRUPT_AFTER = 4          # a cell still printing at this many times the cap is interrupted
COUNTED = ("stream", "display_data", "execute_result", "update_display_data", "error")


def _size(value, stop: int) -> int:
    """About how many bytes a message's content holds (its strings), counting no further than `stop`."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    total = 0
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    for item in items:
        total += _size(item, stop - total)
        if total > stop:
            break
    return total


class CappedExecute(Execute):
    max_output_bytes = Integer(20 * 2**20, help="what a notebook's cells may output in all; the rest is "
                                                "dropped with a note").tag(config=True)

    def preprocess(self, *args, **kwargs):
        self._output_bytes, self._capped, self._interrupted = 0, False, None
        return super().preprocess(*args, **kwargs)

    def process_message(self, msg, cell, cell_index):
        kind = msg.get("msg_type", "")
        if kind in COUNTED or kind.startswith("comm"):
            self._output_bytes += _size(msg.get("content", {}), self.max_output_bytes + 1)
            if self._output_bytes > self.max_output_bytes:
                if not self._capped:
                    self._capped = True
                    cell.outputs.append(new_output("stream", name="stderr", text=(
                        f"{OUTPUT_CAPPED} after {self.max_output_bytes / 2**20:g} MB: the grader keeps no more "
                        f"of this notebook's output\n")))
                if self._output_bytes > INTERRUPT_AFTER * self.max_output_bytes and cell_index != self._interrupted:
                    # the grader would still read (and drop) every byte: stop the cell, as a cell timeout does
                    self._interrupted = cell_index
                    self._interrupt_task = asyncio.get_running_loop().create_task(ensure_async(self.km.interrupt_kernel()))
                if kind != "error" or _size(msg.get("content", {}), 65536) > 65536:
                    return None           # dropped; an error stays (its test failed), when it is small
        return super().process_message(msg, cell, cell_index)


class HideHiddenTests(ClearHiddenTests):
    enabled = Bool(False, help="the grader turns it on with --HideHiddenTests.enabled=True").tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        if utils.is_grade(cell) and cell.cell_type == "code":
            self._remove_hidden_test_region(cell)
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":   # IPython's traceback quotes the failing line
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        return cell, resources
